#!/usr/bin/env bash
# Clang's thread-safety analysis over the code that takes locks without libtorch: the engine core,
# streaming, the server, the client, the load test and their unit tests. GCC (the normal build)
# ignores ABSL_GUARDED_BY and ABSL_EXCLUSIVE_LOCKS_REQUIRED, so this is what checks them
# (ARCHITECTURE.md 11). Fails on any thread-safety finding. ctest runs it (label lint).
# Usage: scripts/thread_safety_check.sh [BUILD_DIR]   (default: ./build/thread-safety)
# Jobs: SPEECHLLM_JOBS (default 1: ctest runs it beside other tests). Needs clang (setup_debian.sh).
# Not covered: translation units that include libtorch (engine/model's torch half, the benchmarks).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-$root/build/thread-safety}
jobs=${SPEECHLLM_JOBS:-1}
if ! command -v clang++ >/dev/null 2>&1; then
  echo "thread_safety_check.sh: clang++ is missing (scripts/setup_debian.sh installs clang)" >&2
  exit 1
fi
launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
# Only thread-safety findings fail the check (clang's other warnings are printed, not fatal).
flags="-Wthread-safety -Wthread-safety-beta -Werror=thread-safety -Werror=thread-safety-beta"
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ \
  "-DCMAKE_CXX_FLAGS=$flags" -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DSPEECHLLM_TORCH_PCH=OFF \
  -DSPEECHLLM_BUILD_BENCHMARKS=OFF "${launcher[@]}" > "$build_dir.cmake.log" 2>&1 ||
  { cat "$build_dir.cmake.log" >&2; exit 1; }
targets=(speechllm_engine speechllm_streaming speechllm_server_lib speechllm_client
         speechllm_loadtest speechllm_tokenizer engine_test session_test client_test
         embedding_cache_test redis_store_test)
ninja -C "$build_dir" -j "$jobs" "${targets[@]}"
echo "thread_safety_check.sh: no thread-safety findings in ${targets[*]}"
