#!/usr/bin/env bash
# clang-tidy's bugprone-* checks over the torch-free sources (engine core, streaming, server,
# client), using the compile commands of the clang thread-safety build (thread_safety_check.sh,
# which this runs first when they are missing). Not in CI: about 6 min on one core. Exits non-zero
# on any finding. Last run (2026-11-29): two findings, both false positives, marked NOLINT.
# Usage: scripts/clang_tidy.sh [BUILD_DIR]   (default: ./build/thread-safety)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-$root/build/thread-safety}
if [[ ! -f $build_dir/compile_commands.json ]]; then
  "$root/scripts/thread_safety_check.sh" "$build_dir"
fi
# Too noisy for this code base: parameters of one type side by side, int/size_t arithmetic.
checks='-*,bugprone-*,-bugprone-easily-swappable-parameters,-bugprone-narrowing-conversions,'
checks+='-bugprone-implicit-widening-of-multiplication-result'
mapfile -t files < <(python3 - "$build_dir/compile_commands.json" "$root" <<'PY'
import json, sys
root = sys.argv[2] + "/"
dirs = ("server/", "streaming/", "client/", "engine/")
torch_free = ("engine/engine", "engine/scheduler", "engine/kv_cache", "engine/prefix",
              "engine/step_plan", "engine/repetition", "engine/types", "engine/fake")
for entry in json.load(open(sys.argv[1])):
    path = entry["file"]
    if not path.startswith(root) or "/build" in path[len(root):]:
        continue
    rel = path[len(root):]
    if rel.startswith(dirs) and (not rel.startswith("engine/") or rel.startswith(torch_free)):
        print(path)
PY
)
out=$(printf '%s\n' "${files[@]}" | sort -u | xargs -n 8 clang-tidy -p "$build_dir" --checks="$checks" --quiet 2>/dev/null || true)
if grep -q "warning:" <<<"$out"; then
  echo "$out"
  echo "clang_tidy.sh: findings above" >&2
  exit 1
fi
echo "clang_tidy.sh: no findings in ${#files[@]} files"
