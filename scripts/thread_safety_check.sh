#!/usr/bin/env bash
# Clang's thread-safety analysis over the code that takes locks without libtorch: the engine core,
# streaming, the server, the client, the load test and their unit tests. GCC (the normal build)
# ignores ABSL_GUARDED_BY and ABSL_EXCLUSIVE_LOCKS_REQUIRED, so this is what checks them
# (ARCHITECTURE.md 11). Fails on any thread-safety finding. ctest runs it (label lint).
# Usage: scripts/thread_safety_check.sh [BUILD_DIR]   (default: ./build/thread-safety)
# Jobs: SPEECHLLM_JOBS (default 1: ctest runs it beside other tests). Needs clang (setup_debian.sh).
# libtorch translation units are compiled only where they take locks (the object files below), and
# the check fails if a file that takes locks is compiled by none of the targets or objects.
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
  -DSPEECHLLM_BUILD_BENCHMARKS=ON "${launcher[@]}" > "$build_dir.cmake.log" 2>&1 ||
  { cat "$build_dir.cmake.log" >&2; exit 1; }
targets=(speechllm_engine speechllm_streaming speechllm_server_lib speechllm_client
         speechllm_loadtest speechllm_tokenizer engine_test session_test client_test
         embedding_cache_test redis_store_test)
# The libtorch translation units that lock: the encoder's graph cache, the server's health state,
# the benchmark's step recorder. Compiling them alone keeps the rest of libtorch's code out. So is
# the engine health watchdog's test, which locks beside its ops test binary.
objects=(engine/model/CMakeFiles/speechllm_model_torch.dir/encoder_graphs.cc.o
         server/CMakeFiles/speechllm-server.dir/main.cc.o
         tools/bench/CMakeFiles/speechllm-bench.dir/engine_bench.cc.o
         tests/integration/ops/CMakeFiles/ops_unit_test.dir/engine_health_test.cc.o)
ninja -C "$build_dir" -j "$jobs" "${targets[@]}" "${objects[@]}"

# Every file that takes a lock or annotates one must be compiled above: a source itself, a header
# by a source that includes it, directly or through other headers (up to three deep).
compiled=$(ninja -C "$build_dir" -t commands "${targets[@]}" "${objects[@]}" |
           grep -o -- "-c $root/[^ ]*" | sed "s|-c $root/||" | sort -u)
cd "$root"
# Whether `$1` (a header) is included by a compiled source, through at most `$2` headers more.
header_compiled() {
  local includer
  for includer in $(grep -rlF "#include \"$1\"" --include='*.cc' --include='*.h' . |
                    sed 's|^\./||' || true); do
    case $includer in
      *.cc) grep -qxF "$includer" <<<"$compiled" && return 0 ;;
      *.h) (( $2 > 0 )) && header_compiled "$includer" $(( $2 - 1 )) && return 0 ;;
    esac
  done
  return 1
}
missing=()
while IFS= read -r file; do
  case $file in
    *.cc) grep -qxF "$file" <<<"$compiled" || missing+=("$file") ;;
    *.h) header_compiled "$file" 3 || missing+=("$file") ;;
  esac
done < <(grep -rlE "absl::Mutex|ABSL_GUARDED_BY|ABSL_EXCLUSIVE_LOCKS_REQUIRED" \
           --include='*.cc' --include='*.h' engine streaming server client tools tests | sort)
if (( ${#missing[@]} > 0 )); then
  echo "thread_safety_check.sh: these files take locks but no checked target compiles them" \
       "(add their target or object file): ${missing[*]}" >&2
  exit 1
fi
echo "thread_safety_check.sh: no thread-safety findings in ${targets[*]} ${objects[*]}"
