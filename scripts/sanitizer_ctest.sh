#!/usr/bin/env bash
# Runs every test that needs no GPU in a sanitizer build (scripts/sanitize.sh, scripts/tsan.sh) and
# fails when a test fails or any sanitizer report was written. The caller exports the sanitizer
# options with log_path under REPORTS_DIR, which must exist and be empty.
# Usage: scripts/sanitizer_ctest.sh NAME BUILD_DIR REPORTS_DIR TIMEOUT_SECONDS
set -euo pipefail
name=$1 build_dir=$2 reports=$3 timeout_s=$4
jobs=${SPEECHLLM_JOBS:-$(nproc)}
status=0
(cd "$build_dir" && ctest -j "$jobs" -LE gpu --timeout "$timeout_s" --output-on-failure) || status=$?
if compgen -G "$reports/*" >/dev/null; then
  echo "$name: sanitizer reports:" >&2
  for report in "$reports"/*; do
    echo "== $report" >&2
    head -60 "$report" >&2
  done
  status=1
fi
if [[ $status -eq 0 ]]; then echo "$name: no sanitizer reports, every test passed"; fi
exit "$status"
