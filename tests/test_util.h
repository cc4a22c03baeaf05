// Shared helpers of the test programs: where the golden fixture lives, and error statistics that
// the parity tests print. Test-only; single-threaded.
#ifndef SPEECHLLM_TESTS_TEST_UTIL_H_
#define SPEECHLLM_TESTS_TEST_UTIL_H_

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

}  // namespace speechllm::testing

#endif  // SPEECHLLM_TESTS_TEST_UTIL_H_
