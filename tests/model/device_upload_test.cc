// UploadValues and UploadTensor (engine/model/device_upload.h). On every machine: the values,
// dtypes and own storage of the CPU uploads. On a GPU with the CUDA libtorch (the Gpu cases; they
// skip elsewhere and with SPEECHLLM_PINNED_UPLOADS=0): the uploads do not wait for queued work and
// land their values behind it, and an upload inside a CUDA graph capture is refused instead of
// being recorded.
#include "engine/model/device_upload.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/model/cuda_graph_capture.h"
#include "gtest/gtest.h"
#include "tests/model/golden_fixture.h"

// The CUDA libtorch's streams (Debian's CPU libtorch lacks their generated configuration header).
#if __has_include(<c10/cuda/impl/cuda_cmake_macros.h>)
#include <c10/cuda/CUDAStream.h>
#define SPEECHLLM_TEST_HAS_C10_CUDA 1
#endif

namespace speechllm::engine {
namespace {

using speechllm::testing::TensorValues;

TEST(DeviceUploadTest, ValuesKeepTheirTypeAndOrderOnTheCpu) {
  const std::vector<int64_t> longs = {7, -1, int64_t{1} << 40, 0};
  const at::Tensor l = UploadValues(longs, at::kCPU);
  EXPECT_EQ(l.scalar_type(), at::kLong);
  EXPECT_EQ(TensorValues<int64_t>(l), longs);
  const std::vector<int32_t> ints = {3, 2, 1};
  const at::Tensor i = UploadValues(ints, at::kCPU);
  EXPECT_EQ(i.scalar_type(), at::kInt);
  EXPECT_EQ(TensorValues<int32_t>(i), ints);
  EXPECT_EQ(UploadValues(std::vector<int64_t>{}, at::kCPU).numel(), 0);
}

TEST(DeviceUploadTest, ATensorUploadOwnsItsStorage) {
  std::vector<float> values = {1.5f, -2.25f, 3.0f, 4.0f};
  const at::Tensor blob = at::from_blob(values.data(), {2, 2}, at::kFloat);
  const at::Tensor uploaded = UploadTensor(blob, at::kCPU, at::kFloat);
  values[0] = 100.0f;  // the host buffer is reused at once
  EXPECT_EQ(TensorValues<float>(uploaded), (std::vector<float>{1.5f, -2.25f, 3.0f, 4.0f}));
  const at::Tensor half = UploadTensor(blob, at::kCPU, at::kBFloat16);
  EXPECT_EQ(half.scalar_type(), at::kBFloat16);
  EXPECT_FLOAT_EQ(half.to(at::kFloat)[0][1].item<float>(), -2.25f);
}

class DeviceUploadGpuTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device (or a CPU libtorch)";
    const char* pinned = std::getenv("SPEECHLLM_PINNED_UPLOADS");
    if (pinned != nullptr && std::string(pinned) == "0")
      GTEST_SKIP() << "SPEECHLLM_PINNED_UPLOADS=0: the blocking copies";
  }
};

// True when every kernel queued on `device`'s current stream has run (the CUDA libtorch only).
bool StreamIdle(const at::Device& device) {
#if SPEECHLLM_TEST_HAS_C10_CUDA
  return c10::cuda::getCurrentCUDAStream(device.index()).query();
#else
  static_cast<void>(device);
  return true;
#endif
}

// Uploads queued behind about 0.2 s of matrix products, from host buffers that are overwritten
// right after: the host does not wait for the queued work (the stream is still busy when they are
// all issued), and each lands its own values (a pinned block is not reused before its copy ran).
TEST_F(DeviceUploadGpuTest, UploadsBehindQueuedWorkLandTheirValues) {
  c10::InferenceMode guard;
  const at::Device device("cuda:0");
  UploadValues(std::vector<int64_t>{0}, device);  // the pinned allocator's first block
  const at::Tensor big = at::randn({8192, 8192}, at::TensorOptions().device(device)) / 100.0;
  at::Tensor busy = big;
  for (int i = 0; i < 12; ++i) busy = at::mm(busy, big).tanh();  // ~1.1 TFLOP each
  std::vector<int64_t> longs(1000);
  std::vector<at::Tensor> uploads;
  for (int64_t round = 0; round < 50; ++round) {
    for (size_t k = 0; k < longs.size(); ++k) longs[k] = round * 10000 + static_cast<int64_t>(k);
    uploads.push_back(UploadValues(longs, device));
  }
  std::vector<float> floats = {0.5f, 1.25f, -3.0f};
  const at::Tensor converted =
      UploadTensor(at::from_blob(floats.data(), {3}, at::kFloat), device, at::kBFloat16);
  floats.assign(floats.size(), 99.0f);
  const std::vector<int32_t> ints = {5, 4, 3};
  const at::Tensor i = UploadValues(ints, device);
  EXPECT_FALSE(StreamIdle(device)) << "an upload waited for the queued products";
  EXPECT_TRUE(busy.isfinite().all().item<bool>());
  for (int64_t round = 0; round < 50; ++round) {
    const std::vector<int64_t> got = TensorValues<int64_t>(uploads[round]);
    ASSERT_EQ(got.size(), longs.size());
    EXPECT_EQ(got.front(), round * 10000) << round;
    EXPECT_EQ(got.back(), round * 10000 + 999) << round;
  }
  EXPECT_EQ(converted.device(), device);
  EXPECT_EQ(converted.scalar_type(), at::kBFloat16);
  EXPECT_EQ(TensorValues<float>(converted.to(at::kFloat)),
            (std::vector<float>{0.5f, 1.25f, -3.0f}));
  EXPECT_EQ(TensorValues<int32_t>(i), ints);
}

#if SPEECHLLM_HAVE_CUDA_GRAPHS
// A capture would record the copy from a pinned block that is handed out again afterwards, so the
// replay would read whatever the host wrote there later: the upload throws, the capture fails, and
// uploads work again after it.
TEST_F(DeviceUploadGpuTest, AnUploadInsideACaptureIsRefused) {
  c10::InferenceMode guard;
  const at::Device device("cuda:0");
  if (!CudaGraphsEnabled(device)) GTEST_SKIP() << "CUDA graphs are off in this environment";
  GraphCapturer capturer;
  CapturedGraph graph;
  at::Tensor out;
  std::string message;
  try {
    capturer.Capture(device, &graph, [&] {
      out = UploadValues(std::vector<int64_t>{1, 2, 3}, device);
    });
  } catch (const c10::Error& e) {
    message = e.what_without_backtrace();
  }
  EXPECT_NE(message.find("inside a CUDA graph capture"), std::string::npos) << message;
  EXPECT_EQ(TensorValues<int64_t>(UploadValues(std::vector<int64_t>{4, 5}, device)),
            (std::vector<int64_t>{4, 5}));
}
#endif

}  // namespace
}  // namespace speechllm::engine
