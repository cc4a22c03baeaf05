#!/usr/bin/env bash
# Configures and builds speechllm with CMake + Ninja + ccache.
# Usage: scripts/build.sh [cpu|engine-only|cuda|asan] [BUILD_DIR] (default: cpu build in ./build)
#   cpu          everything, against Debian's libtorch (the default); with the CUDA kernels
#                (compiled, never run there) when a CUDA toolkit is installed
#   engine-only  engine/, its tests and benchmarks only (no gRPC/protobuf/opus), e.g. on GPU machines
#   cuda         engine-only plus the CUDA kernels; CMAKE_PREFIX_PATH must name a CUDA libtorch
#   asan         everything with AddressSanitizer + UndefinedBehaviorSanitizer, no benchmarks
#                (scripts/sanitize.sh)
# Extra CMake arguments: SPEECHLLM_CMAKE_ARGS="-DX=Y ...". Jobs: SPEECHLLM_JOBS (default: nproc).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
preset=${1:-cpu}
build_dir=${2:-$root/build}
jobs=${SPEECHLLM_JOBS:-$(nproc)}

args=(-DCMAKE_BUILD_TYPE=Release)
case "$preset" in
  # The project's CUDA kernels compile wherever the toolkit is (they run only on a GPU machine).
  cpu) if command -v nvcc >/dev/null 2>&1 || [[ -x /usr/local/cuda/bin/nvcc ]]; then
         args+=(-DSPEECHLLM_WITH_CUDA=ON)
       fi ;;
  engine-only) args+=(-DSPEECHLLM_ENGINE_ONLY=ON) ;;
  cuda) args+=(-DSPEECHLLM_ENGINE_ONLY=ON -DSPEECHLLM_WITH_CUDA=ON) ;;
  asan) sanitizers="-fsanitize=address,undefined -fno-omit-frame-pointer"
        args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPEECHLLM_BUILD_BENCHMARKS=OFF
              "-DCMAKE_CXX_FLAGS=$sanitizers" "-DCMAKE_EXE_LINKER_FLAGS=$sanitizers"
              "-DCMAKE_SHARED_LINKER_FLAGS=$sanitizers") ;;
  *) echo "usage: $0 [cpu|engine-only|cuda|asan] [BUILD_DIR]" >&2; exit 2 ;;
esac
if command -v ccache >/dev/null 2>&1; then
  # Hits across fresh clones and build directories need a base directory and PCH sloppiness.
  export CCACHE_BASEDIR="$root"
  export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
  args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
# shellcheck disable=SC2086
cmake -S "$root" -B "$build_dir" "${generator[@]}" "${args[@]}" ${SPEECHLLM_CMAKE_ARGS:-}
cmake --build "$build_dir" -j "$jobs"
echo "build.sh: built $preset in $build_dir"
