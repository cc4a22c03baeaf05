#include "engine/model/real_fft.h"

#include <cmath>
#include <complex>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace speechllm::engine {
namespace {

// Direct O(n^2) DFT in double precision.
std::vector<std::complex<double>> NaiveDft(const std::vector<float>& x) {
  const int n = static_cast<int>(x.size());
  std::vector<std::complex<double>> out(n / 2 + 1);
  for (int k = 0; k <= n / 2; ++k) {
    std::complex<double> acc = 0;
    for (int j = 0; j < n; ++j)
      acc += static_cast<double>(x[j]) * std::polar(1.0, -2.0 * M_PI * j * k / n);
    out[k] = acc;
  }
  return out;
}

class RealFftTest : public ::testing::TestWithParam<int> {};

TEST_P(RealFftTest, MatchesDirectDft) {
  const int n = GetParam();
  std::mt19937 rng(n);
  std::uniform_real_distribution<float> dist(-1, 1);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  RealFft fft(n);
  std::vector<std::complex<float>> out(n / 2 + 1);
  fft.Forward(x.data(), out.data());
  const auto expected = NaiveDft(x);
  double max_err = 0;
  for (int k = 0; k <= n / 2; ++k)
    max_err = std::max(max_err, std::abs(std::complex<double>(out[k]) - expected[k]));
  std::printf("n=%d max |err| = %.3g\n", n, max_err);
  EXPECT_LT(max_err, 2e-5 * n);
}

// 62 and 2002 take the largest prime radix (31) and three odd ones (7 x 11 x 13).
INSTANTIATE_TEST_SUITE_P(Sizes, RealFftTest,
                         ::testing::Values(2, 4, 8, 16, 30, 42, 62, 64, 100, 400, 512, 1000, 2002));

TEST(RealFftSizeTest, SizesWithLargePrimeFactorsAreRefused) {
  EXPECT_TRUE(RealFft::SupportsSize(400));
  EXPECT_TRUE(RealFft::SupportsSize(62));   // n/2 = 31
  EXPECT_FALSE(RealFft::SupportsSize(74));  // n/2 = 37
  EXPECT_FALSE(RealFft::SupportsSize(200006));
  EXPECT_FALSE(RealFft::SupportsSize(401));
  EXPECT_FALSE(RealFft::SupportsSize(0));
  EXPECT_FALSE(RealFft::SupportsSize(RealFft::kMaxSize + 2));
}

}  // namespace
}  // namespace speechllm::engine
