#!/usr/bin/env bash
# Installs every Debian 12 package that building and testing speechllm needs (CPU build). Debian 13
# works too: it has no grpc-proto package, and golang-google-grpc-dev carries health.proto instead.
# Usage: sudo scripts/setup_debian.sh   (idempotent; run as root or with sudo available)
# Package choices and pitfalls: docs/DEPENDENCIES.md in the shared docs; OpenBLAS must be named
# explicitly, otherwise libtorch falls back to the 47x slower reference BLAS.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

CORE_PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache git ca-certificates curl
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  libtorch-dev libopenblas0-pthread
  libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev
)
EXTRA_PACKAGES=(
  libopus-dev libopusfile-dev libopusenc-dev opus-tools libsoxr-dev libogg-dev libflac-dev
  flac mkvtoolnix
  libpcre2-dev libicu-dev libssl-dev libhiredis-dev redis-server
  prometheus-cpp-dev libcpp-httplib-dev prometheus
  sox libsox-fmt-all espeak-ng openssl yamllint python3 clang
  golang-github-gogo-googleapis-dev
)

stamp=/var/lib/apt/periodic/update-success-stamp
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +360 2>/dev/null)" ]; then
  $SUDO apt-get update -q
fi
# grpc/health/v1/health.proto: grpc-proto on Debian 12, golang-google-grpc-dev on Debian 13.
if apt-cache show grpc-proto > /dev/null 2>&1; then
  CORE_PACKAGES+=(grpc-proto)
else
  EXTRA_PACKAGES+=(golang-google-grpc-dev)
fi
$SUDO apt-get install -y -q "${CORE_PACKAGES[@]}"
$SUDO apt-get install -y -q --no-install-recommends "${EXTRA_PACKAGES[@]}"
# Node.js + npm run the reference tokenizer and `buf curl` in tests; keep an existing install.
if ! command -v npm >/dev/null 2>&1; then
  $SUDO apt-get install -y -q --no-install-recommends nodejs npm
fi
echo "setup_debian.sh: all packages installed"
