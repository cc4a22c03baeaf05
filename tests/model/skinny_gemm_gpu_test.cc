// The skinny GEMM (engine/cuda/skinny_gemm.h) against a float64 CPU product of the same inputs
// (label gpu; the kernel cases skip without a usable device): 1 to 8 rows, a bias or none, the 7B
// widths, a feature count that ends inside a warp, strided input rows, in float32, bfloat16 and
// float16 (the one rounding of the output bounds the error). Which layouts it takes is checked
// everywhere. With a CUDA libtorch, Linear::Forward under the timed and forced choices too.
#include <cuda_runtime.h>

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/cuda/skinny_gemm.h"
#include "engine/model/cuda_kernels.h"
#include "engine/model/layers.h"
#include "engine/model/linear_tuning.h"
#include "gtest/gtest.h"
#include "tests/model/cuda_test_util.h"

namespace speechllm::engine {
namespace {

using speechllm::testing::DeviceBuffer;

cuda::AttentionDtype KernelDtype(at::ScalarType dtype) {
  return dtype == at::kBFloat16 ? cuda::AttentionDtype::kBFloat16
         : dtype == at::kHalf   ? cuda::AttentionDtype::kFloat16
                                : cuda::AttentionDtype::kFloat32;
}
std::string DtypeName(at::ScalarType dtype) {
  return dtype == at::kBFloat16 ? "bfloat16" : dtype == at::kHalf ? "float16" : "float32";
}
// Relative error bound: float32 sums; otherwise one rounding of each output to 8 or 11 bits.
double Tolerance(at::ScalarType dtype) {
  return dtype == at::kBFloat16 ? 4e-3 : dtype == at::kHalf ? 1e-3 : 1e-5;
}

// Relative (Frobenius) error of `got` against the float64 `expected`.
double RelativeError(const at::Tensor& got, const at::Tensor& expected) {
  const at::Tensor difference = got.to(at::kDouble) - expected;
  return (difference.norm() / expected.norm()).item<double>();
}

class SkinnyGemmGpuTest : public ::testing::TestWithParam<at::ScalarType> {
 protected:
  void SetUp() override {
    if (cuda::CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
    at::manual_seed(11);
  }

  // x [rows, in] (rows `row_stride` elements apart), weight [out, in], optional bias; runs the
  // kernel and checks it against the float64 product.
  void Check(int64_t rows, int64_t out_features, int64_t in_features, bool with_bias,
             int64_t row_stride = 0) {
    const at::ScalarType dtype = GetParam();
    if (row_stride == 0) row_stride = in_features;
    const auto random = [&](std::vector<int64_t> shape) { return at::randn(shape).to(dtype); };
    const at::Tensor x_storage = random({rows, row_stride});
    const at::Tensor x = x_storage.narrow(1, 0, in_features);
    const at::Tensor weight = random({out_features, in_features});
    const at::Tensor bias = with_bias ? random({out_features}) : at::Tensor();
    const at::Tensor expected = at::linear(x.to(at::kDouble), weight.to(at::kDouble),
                                           with_bias ? bias.to(at::kDouble) : at::Tensor());
    DeviceBuffer x_device(x_storage), weight_device(weight);
    DeviceBuffer bias_device(with_bias ? bias : at::zeros({1}, dtype));
    const at::Tensor out = at::empty({rows, out_features}, dtype);
    DeviceBuffer out_device(out);
    out_device.Fill(0xff);  // NaN: every output must be written
    cuda::SkinnyGemmParams p;
    p.x = x_device.data();
    p.x_row_stride = row_stride;
    p.weight = weight_device.data();
    p.bias = with_bias ? bias_device.data() : nullptr;
    p.out = out_device.data();
    p.rows = static_cast<int32_t>(rows);
    p.out_features = static_cast<int32_t>(out_features);
    p.in_features = static_cast<int32_t>(in_features);
    p.dtype = KernelDtype(dtype);
    ASSERT_TRUE(cuda::SkinnyGemmFits(p));
    const char* error = cuda::LaunchSkinnyGemm(p);
    ASSERT_EQ(error, nullptr) << error;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    out_device.CopyTo(out);
    const double relative = RelativeError(out, expected);
    std::printf("%s, %lld rows x %lld -> %lld%s%s: relative error %.3g\n", DtypeName(dtype).c_str(),
                static_cast<long long>(rows), static_cast<long long>(in_features),
                static_cast<long long>(out_features), with_bias ? ", bias" : "",
                row_stride != in_features ? ", strided" : "", relative);
    EXPECT_LE(relative, Tolerance(dtype))
        << rows << " rows, " << out_features << "x" << in_features;
  }
};

TEST_P(SkinnyGemmGpuTest, EveryRowCountWithAndWithoutBias) {
  for (int64_t rows = 1; rows <= cuda::kSkinnyMaxRows; ++rows) {
    Check(rows, 96, 64, /*with_bias=*/true);
    Check(rows, 96, 64, /*with_bias=*/false);
  }
}

TEST_P(SkinnyGemmGpuTest, ModelWidthsAndRaggedFeatureCounts) {
  for (const int64_t rows : {1, 2, 3, 5, 8}) Check(rows, 4099, 4096, /*with_bias=*/true);
  for (const int64_t rows : {1, 4, 8}) Check(rows, 40, 11008, /*with_bias=*/false);
  for (const int64_t rows : {1, 8}) Check(rows, 1, 8, /*with_bias=*/true);
}

TEST_P(SkinnyGemmGpuTest, StridedInputRows) {
  for (const int64_t rows : {2, 3, 7}) Check(rows, 33, 64, /*with_bias=*/true, /*row_stride=*/72);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, SkinnyGemmGpuTest,
                         ::testing::Values(at::kFloat, at::kBFloat16, at::kHalf),
                         [](const auto& info) { return DtypeName(info.param); });

// Host code only: runs without a device.
TEST(SkinnyGemmFitsTest, TakesAlignedWholePiecesOfOneToEightRows) {
  cuda::SkinnyGemmParams p;
  p.x = reinterpret_cast<const void*>(0x1000);
  p.weight = reinterpret_cast<const void*>(0x2000);
  p.x_row_stride = 64;
  p.rows = 1;
  p.out_features = 10;
  p.in_features = 64;
  p.dtype = cuda::AttentionDtype::kBFloat16;
  EXPECT_TRUE(cuda::SkinnyGemmFits(p));
  const auto fits_with = [&](auto change) {
    cuda::SkinnyGemmParams q = p;
    change(q);
    return cuda::SkinnyGemmFits(q);
  };
  EXPECT_TRUE(fits_with([](auto& q) { q.rows = 8; }));
  EXPECT_FALSE(fits_with([](auto& q) { q.rows = 0; }));
  EXPECT_FALSE(fits_with([](auto& q) { q.rows = 9; }));
  EXPECT_FALSE(fits_with([](auto& q) { q.in_features = 60; }));  // 7.5 pieces of bfloat16
  EXPECT_TRUE(fits_with([](auto& q) {                            // 15 pieces of float32
    q.in_features = 60;
    q.dtype = cuda::AttentionDtype::kFloat32;
  }));
  EXPECT_FALSE(fits_with([](auto& q) { q.x = reinterpret_cast<const void*>(0x1002); }));
  EXPECT_FALSE(fits_with([](auto& q) { q.weight = reinterpret_cast<const void*>(0x2008); }));
  EXPECT_FALSE(fits_with([](auto& q) { q.x_row_stride = 68; }));  // rows not 16-byte aligned
  EXPECT_FALSE(fits_with([](auto& q) { q.x_row_stride = 56; }));  // rows overlap
  EXPECT_FALSE(fits_with([](auto& q) { q.out_features = 0; }));
  EXPECT_NE(cuda::LaunchSkinnyGemm(p), nullptr);  // no output
}

// Linear::Forward on CUDA tensors (a CUDA libtorch): the load-time timing yields a row limit and
// timings for 1, 2, 4 and 8 rows; with the kernel forced up to 8 rows every row count matches the
// float64 product, and a transposed input (not the kernel's layout) falls back to at::linear.
TEST(SkinnyLinearGpuTest, TimedAndForcedChoicesMatchTheProduct) {
  if (cuda::CudaDeviceCount() == 0 || !at::hasCUDA()) GTEST_SKIP() << "no CUDA libtorch device";
  const at::NoGradGuard no_grad;
  if (!CudaKernelsEnabled(at::Device(at::kCUDA, 0))) {
    GTEST_SKIP() << "the project's kernels are switched off (SPEECHLLM_USE_CUDA_KERNELS=0)";
  }
  // The test sets the variable itself; the caller's value comes back at the end.
  const char* inherited = std::getenv(kSkinnyGemmVariable);
  const std::string caller_value = inherited == nullptr ? "" : inherited;
  unsetenv(kSkinnyGemmVariable);
  for (const at::ScalarType dtype : {at::kFloat, at::kBFloat16}) {
    const auto options = at::TensorOptions().dtype(dtype).device(at::kCUDA);
    Linear linear;
    linear.weight = at::randn({1536, 1024}, options);
    linear.bias = at::randn({1536}, options);
    const absl::StatusOr<SkinnyTuning> tuning = TuneSkinnyLinears({&linear});
    ASSERT_TRUE(tuning.ok()) << tuning.status();
    EXPECT_TRUE(tuning->failures.empty()) << SkinnyTuningToString(*tuning);
    ASSERT_EQ(tuning->timings.size(), 4u);
    for (const SkinnyGemmTiming& t : tuning->timings) {
      EXPECT_GT(t.kernel_us, 0);
      EXPECT_GT(t.library_us, 0);
    }
    std::printf("%s timed: %s -> up to %lld rows\n", DtypeName(dtype).c_str(),
                SkinnyTuningToString(*tuning).c_str(),
                static_cast<long long>(linear.skinny_max_rows));
    EXPECT_EQ(linear.skinny_max_rows, SkinnyRowsFromTimings(tuning->timings));

    setenv(kSkinnyGemmVariable, "8", 1);
    const absl::StatusOr<SkinnyTuning> forced = TuneSkinnyLinears({&linear});
    unsetenv(kSkinnyGemmVariable);
    ASSERT_TRUE(forced.ok()) << forced.status();
    EXPECT_TRUE(forced->timings.empty());
    ASSERT_EQ(linear.skinny_max_rows, 8);
    for (int64_t rows = 1; rows <= 9; ++rows) {  // 9: past the kernel, at::linear
      const at::Tensor x = at::randn({rows, 1024}, options);
      const at::Tensor expected =
          at::linear(x.to(at::kDouble), linear.weight.to(at::kDouble), linear.bias.to(at::kDouble));
      EXPECT_LE(RelativeError(linear.Forward(x), expected), Tolerance(dtype)) << rows;
      const at::Tensor transposed = at::randn({1024, rows}, options).t();
      const at::Tensor expected_t = at::linear(
          transposed.to(at::kDouble), linear.weight.to(at::kDouble), linear.bias.to(at::kDouble));
      EXPECT_LE(RelativeError(linear.Forward(transposed), expected_t), Tolerance(dtype)) << rows;
    }
  }
  if (!caller_value.empty()) setenv(kSkinnyGemmVariable, caller_value.c_str(), 1);
}

}  // namespace
}  // namespace speechllm::engine
