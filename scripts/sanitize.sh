#!/usr/bin/env bash
# Builds everything with AddressSanitizer + UndefinedBehaviorSanitizer and runs every test that
# runs without a GPU. Not part of CI (a cold build takes about 30 min on 2 cores; with ccache warm
# from an earlier run, a few minutes); run it after changes to memory or thread handling.
# Usage: scripts/sanitize.sh [BUILD_DIR]   (default: ./build-asan)
# Reports of every process, the spawned servers included, go to BUILD_DIR/sanitizer-reports; the
# script fails when ctest fails or any report was written.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-$root/build-asan}
"$root/scripts/build.sh" asan "$build_dir"

reports=$build_dir/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
# detect_leaks=0: libtorch and gRPC keep process-lifetime allocations that LeakSanitizer reports.
# quarantine_size_mb=8: the default 256 MB quarantine of freed memory would be counted by the
# test that bounds the server's memory while a client stops reading.
export ASAN_OPTIONS="detect_leaks=0:quarantine_size_mb=8:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$reports/ubsan"
exec "$root/scripts/sanitizer_ctest.sh" sanitize.sh "$build_dir" "$reports" 900
