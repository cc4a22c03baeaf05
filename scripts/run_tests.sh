#!/usr/bin/env bash
# Runs the test suite with ctest. Usage: scripts/run_tests.sh [BUILD_DIR] [LABEL_REGEX]
#   LABEL_REGEX selects by ctest label: unit, integration, model, gpu (default: all of them; gpu tests
#   skip cleanly without a CUDA device).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-$root/build}
labels=${2:-}
jobs=${SPEECHLLM_TEST_JOBS:-$(nproc)}
label_args=()
if [ -n "$labels" ]; then label_args=(-L "$labels"); fi
ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" "${label_args[@]}"
