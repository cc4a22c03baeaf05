#!/usr/bin/env bash
# Run on the Debian build machine before a GPU run: downloads the Debian packages the engine-only build
# needs on a GPU machine (which has a CUDA libtorch, a compiler and CMake, but no Debian -dev packages
# and no network) into .gpu/debs, a git-ignored folder that travels with the working tree.
#   tools/gpu/prepare.sh        then, on the GPU machine: tools/gpu/run_bench.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$root/.gpu/debs
mkdir -p "$dir"
cd "$dir"
packages="libabsl-dev libabsl20220623 nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev libbenchmark1debian"
apt-get download $packages >/dev/null
ls -la "$dir"
echo "prepare.sh: $(ls "$dir" | wc -l) packages in $dir ($(du -sh "$dir" | cut -f1))"
