#!/usr/bin/env bash
# Builds everything with ThreadSanitizer and runs every test that runs without a GPU, the spawned
# server processes included. Not part of CI (a cold build takes about 30 min on 2 cores); run it after
# changes to threads, locks or callbacks.
# Usage: scripts/tsan.sh [BUILD_DIR]   (default: ./build-tsan)
# Debian's Abseil is built without ThreadSanitizer: its Mutex and Notification synchronize through
# atomics the sanitizer cannot see, so every guarded field would look racy. This script downloads
# the source of the installed Abseil version (apt-get source, into BUILD_DIR, without touching the
# system's apt lists), compiles absl/synchronization's Mutex, Notification, Barrier and
# BlockingCounter with -fsanitize=thread, and `build.sh tsan` links them into every executable.
# The reactors mark gRPC's hand-overs themselves (proto/grpc_handoff.h); scripts/tsan.supp lists
# what stays invisible inside the uninstrumented libraries. Reports go to
# BUILD_DIR/sanitizer-reports; the script fails when ctest fails or any report exists.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${1:-$root/build-tsan}
mkdir -p "$build_dir"
build_dir=$(cd "$build_dir" && pwd)

absl_dir=$build_dir/absl-tsan
archive=$absl_dir/libabsl_sync_tsan.a
if [[ ! -f $archive ]]; then
  version=$(dpkg-query -W -f='${source:Version}' libabsl-dev)
  apt_dir=$absl_dir/apt
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/sources.list.d" "$absl_dir/objects"
  for suite in "bookworm bookworm-updates|http://deb.debian.org/debian" \
               "bookworm-security|http://deb.debian.org/debian-security"; do
    printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: %s\n\n' \
      "${suite#*|}" "${suite%|*}" /usr/share/keyrings/debian-archive-keyring.gpg
  done > "$apt_dir/sources.list.d/debian-src.sources"
  apt_options=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
               -o "Dir::State::Lists=$apt_dir/lists")
  apt-get "${apt_options[@]}" update -qq
  (cd "$absl_dir" && apt-get "${apt_options[@]}" source --download-only "abseil=$version" -qq &&
     dpkg-source -x ./*.dsc source >/dev/null)
  # Compiled against the installed headers (no -I to the source tree), so the objects match the
  # shared libraries' ABI and options exactly.
  for name in mutex notification barrier blocking_counter; do
    g++ -std=c++17 -O1 -g -fPIC -fsanitize=thread -c "$absl_dir/source/absl/synchronization/$name.cc" \
      -o "$absl_dir/objects/$name.o"
  done
  ar rcs "$archive" "$absl_dir"/objects/*.o
fi

SPEECHLLM_TSAN_ABSL_ARCHIVE=$archive "$root/scripts/build.sh" tsan "$build_dir"

reports=$build_dir/sanitizer-reports
rm -rf "$reports"
mkdir -p "$reports"
# One libtorch thread: libgomp is not instrumented, and its workers would race in the reports.
export OMP_NUM_THREADS=1
export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1:log_path=$reports/tsan:suppressions=$root/scripts/tsan.supp"
exec "$root/scripts/sanitizer_ctest.sh" tsan.sh "$build_dir" "$reports" 1800
