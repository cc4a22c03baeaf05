// Shared helpers of the test programs: where the golden fixture lives, error statistics that the
// parity tests print, and removing a scratch directory. Test-only; single-threaded.
#ifndef SPEECHLLM_TESTS_TEST_UTIL_H_
#define SPEECHLLM_TESTS_TEST_UTIL_H_

#include <ftw.h>
#include <stdio.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

namespace speechllm::testing {

// The golden fixture directory: $SPEECHLLM_GOLDEN_DIR (set by ctest), else tests/data relative to
// the working directory.
inline std::string GoldenDir() {
  const char* dir = std::getenv("SPEECHLLM_GOLDEN_DIR");
  return dir != nullptr && *dir != '\0' ? dir : "tests/data/qwen2-audio-tiny-golden";
}

struct ErrorStats {
  double max_abs = 0;
  double mean_abs = 0;
  double relative_l2 = 0;  // ||out - ref|| / ||ref||
};

inline ErrorStats CompareVectors(const std::vector<float>& out, const std::vector<float>& ref) {
  ErrorStats s;
  if (out.size() != ref.size() || ref.empty()) {
    s.max_abs = s.mean_abs = s.relative_l2 = INFINITY;
    return s;
  }
  double sum_abs = 0, diff_sq = 0, ref_sq = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = static_cast<double>(out[i]) - ref[i];
    s.max_abs = std::max(s.max_abs, std::abs(d));
    sum_abs += std::abs(d);
    diff_sq += d * d;
    ref_sq += static_cast<double>(ref[i]) * ref[i];
  }
  s.mean_abs = sum_abs / ref.size();
  s.relative_l2 = std::sqrt(diff_sq) / std::max(std::sqrt(ref_sq), 1e-30);
  if (std::isnan(diff_sq)) s.max_abs = s.mean_abs = s.relative_l2 = NAN;
  return s;
}

// Deletes `path` and everything under it; nothing if it does not exist. Not
// std::filesystem::remove_all: the CUDA torch wheel's libtorch.so exports its own copy of it, which
// the test programs bind to and which crashed with a call through a null pointer on a GPU machine
// (libtorch 2.11).
inline void RemoveTree(const std::string& path) {
  nftw(
      path.c_str(),
      [](const char* entry, const struct stat*, int, struct FTW*) { return ::remove(entry); }, 16,
      FTW_DEPTH | FTW_PHYS);
}

}  // namespace speechllm::testing

#endif  // SPEECHLLM_TESTS_TEST_UTIL_H_
