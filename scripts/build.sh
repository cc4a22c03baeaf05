#!/usr/bin/env bash
# Configures and builds speechllm with CMake + Ninja + ccache.
# Usage: scripts/build.sh [cpu|engine-only|cuda|asan|tsan] [BUILD_DIR] (default: cpu build in ./build)
#   cpu          everything, against Debian's libtorch (the default); with the CUDA kernels
#                (compiled, never run there) when a CUDA toolkit is installed
#   engine-only  engine/, its tests and benchmarks only (no gRPC/protobuf/opus), e.g. on GPU machines
#   cuda         engine-only plus the CUDA kernels; CMAKE_PREFIX_PATH must name a CUDA libtorch
#   asan         everything with AddressSanitizer + UndefinedBehaviorSanitizer, no benchmarks
#                (scripts/sanitize.sh)
#   tsan         everything with ThreadSanitizer, no benchmarks; SPEECHLLM_TSAN_ABSL_ARCHIVE must
#                name the instrumented absl::Mutex objects that scripts/tsan.sh builds
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
  # Debian's Abseil is not built with ThreadSanitizer, so its Mutex would look like no lock at all.
  # Every executable carries instrumented copies of the synchronization objects (the same Abseil
  # version, built by scripts/tsan.sh) and exports them (-rdynamic), so the calls of the shared
  # libraries (Abseil's own, gRPC's) resolve to them too.
  # -U__SANITIZE_THREAD__: protobuf 3.21's MapFieldBase gains two fields when that macro is set,
  # which no longer matches Debian's uninstrumented libprotobuf (a crash in map reflection).
  # SPEECHLLM_TSAN turns on the reactors' gRPC handoff annotations (proto/grpc_handoff.h).
  tsan) archive=${SPEECHLLM_TSAN_ABSL_ARCHIVE:?"tsan needs SPEECHLLM_TSAN_ABSL_ARCHIVE (scripts/tsan.sh)"}
        sanitizers="-fsanitize=thread -fno-omit-frame-pointer"
        absl_libs="-labsl_synchronization -labsl_graphcycles_internal -labsl_base -labsl_spinlock_wait"
        absl_libs+=" -labsl_stacktrace -labsl_symbolize -labsl_time -labsl_raw_logging_internal"
        absl_libs+=" -labsl_malloc_internal -labsl_int128 -labsl_time_zone"
        args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPEECHLLM_BUILD_BENCHMARKS=OFF
              "-DCMAKE_CXX_FLAGS=$sanitizers -U__SANITIZE_THREAD__ -DSPEECHLLM_TSAN=1"
              "-DCMAKE_EXE_LINKER_FLAGS=$sanitizers -rdynamic -Wl,--whole-archive $archive -Wl,--no-whole-archive $absl_libs"
              "-DCMAKE_SHARED_LINKER_FLAGS=$sanitizers") ;;
  *) echo "usage: $0 [cpu|engine-only|cuda|asan|tsan] [BUILD_DIR]" >&2; exit 2 ;;
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
