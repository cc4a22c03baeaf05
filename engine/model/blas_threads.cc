#include "engine/model/blas_threads.h"

#include <dlfcn.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace speechllm::engine {
namespace {

using SetThreads = void (*)(int);
using GetThreads = int (*)();

// OpenBLAS's entry points where the process has loaded it (through libtorch's libblas.so.3);
// looked up rather than linked, so other BLAS builds of libtorch still load.
SetThreads FindSetter() {
  return reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
}
GetThreads FindGetter() {
  return reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
}

}  // namespace

std::string BlasLibraryName() {
  return FindSetter() != nullptr && FindGetter() != nullptr ? "OpenBLAS" : "";
}

int BlasThreads() {
  const GetThreads get = FindGetter();
  return get == nullptr ? -1 : get();
}

bool SetBlasThreads(int threads) {
  const SetThreads set = FindSetter();
  if (set == nullptr || FindGetter() == nullptr || threads < 1) return false;
  set(threads);
  return true;
}

int AutomaticBlasThreads(int intra_op_threads) { return std::max(1, intra_op_threads - 1); }

BlasThreadPolicy::BlasThreadPolicy(int option, bool cpu, int intra_op_threads)
    : library_(BlasLibraryName()), full_(BlasThreads()), current_(BlasThreads()) {
  if (library_.empty() || !cpu || option == 0) return;
  if (option > 0) {
    fixed_ = SetBlasThreads(option);
    current_ = BlasThreads();
    return;
  }
  reduced_ = AutomaticBlasThreads(intra_op_threads);
  adaptive_ = reduced_ < full_;  // nothing to switch on a machine of one core
}

void BlasThreadPolicy::Apply(int64_t live_sequences) {
  if (!adaptive_) return;
  const int wanted = live_sequences > kFullBlasUpToSequences ? reduced_ : full_;
  if (wanted != current_ && SetBlasThreads(wanted)) current_ = wanted;
}

std::string BlasThreadPolicy::Summary() const {
  if (library_.empty()) return "no BLAS threads to set";
  if (adaptive_) {
    return absl::StrCat(library_, " ", full_, " up to ", kFullBlasUpToSequences, " sequences, ",
                        reduced_, " beyond (automatic)");
  }
  return absl::StrCat(library_, " ", current_, fixed_ ? "" : " (its own setting)");
}

}  // namespace speechllm::engine
