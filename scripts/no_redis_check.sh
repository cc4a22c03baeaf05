#!/usr/bin/env bash
# The build without hiredis (-DSPEECHLLM_WITH_REDIS=OFF, a supported CMake option): a nested build
# of the embedding cache and its tests, which must link and pass, and refuse a Redis store with
# FAILED_PRECONDITION. ctest runs it (label lint), since CI's own build has Redis on.
# Usage: scripts/no_redis_check.sh [BUILD_DIR]   (default: ./build/no-redis)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-$root/build/no-redis}
jobs=${SPEECHLLM_JOBS:-1}
launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPEECHLLM_WITH_REDIS=OFF \
  -DSPEECHLLM_TORCH_PCH=OFF -DSPEECHLLM_BUILD_BENCHMARKS=OFF "${launcher[@]}" \
  > "$build_dir.cmake.log" 2>&1 || { cat "$build_dir.cmake.log" >&2; exit 1; }
ninja -C "$build_dir" -j "$jobs" embedding_cache_test
"$build_dir/tests/unit/streaming/embedding_cache_test"
echo "no_redis_check.sh: the embedding cache builds, links and passes without hiredis"
