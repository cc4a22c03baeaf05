// EncoderGraphs (engine/model/encoder_graphs.h), the CUDA graphs of whole-segment encoder passes.
// On every machine (label model; the tiny golden checkpoint in float32 on the CPU): the length
// buckets, and the padded computation the graphs capture (AudioEncoder::EncodePaddedSegment)
// against the unpadded passes, with padding that cannot reach the segment's rows. On a GPU with
// graph support (the gpu.* tests; they skip elsewhere): EncodeBatch replays the graphs in float32
// and bfloat16 and must match the eager per-item pass, replay after replay. Errors are printed.
#include "engine/model/encoder_graphs.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <string>
#include <vector>

#include "engine/model/qwen2_audio_model.h"
#include "gtest/gtest.h"
#include "tests/model/fixture_model.h"

namespace speechllm::engine {
namespace {

double RelativeError(const at::Tensor& out, const at::Tensor& ref) {
  const at::Tensor a = out.to(at::kDouble).cpu(), b = ref.to(at::kDouble).cpu();
  return ((a - b).norm() / b.norm().clamp_min(1e-12)).item<double>();
}

// `conv` padded with `padding` rows of `fill` and run through EncodePaddedSegment: the segment's
// rows of the result.
at::Tensor PaddedSegment(const AudioEncoder& encoder, const at::Tensor& conv, int64_t padding,
                         double fill) {
  const at::Tensor padded =
      at::cat({conv, at::full({padding, conv.size(1)}, fill, conv.options())});
  const at::Tensor valid = at::scalar_tensor(conv.size(0), conv.options().dtype(at::kLong));
  return encoder.EncodePaddedSegment(padded, valid).narrow(0, 0, conv.size(0) / 2);
}

TEST(EncoderGraphBucketsTest, WholeSecondsUpToTheWindow) {
  EXPECT_EQ(EncoderGraphs::BucketOf(1, 1500), 50);
  EXPECT_EQ(EncoderGraphs::BucketOf(50, 1500), 50);
  EXPECT_EQ(EncoderGraphs::BucketOf(51, 1500), 100);
  EXPECT_EQ(EncoderGraphs::BucketOf(500, 1500), 500);  // a 10 s clip is its own bucket
  EXPECT_EQ(EncoderGraphs::BucketOf(1499, 1500), 1500);
  EXPECT_EQ(EncoderGraphs::BucketOf(1500, 1500), 1500);
  EXPECT_EQ(EncoderGraphs::BucketOf(101, 120), 120);  // a window that is not whole seconds
  EXPECT_THROW(EncoderGraphs::BucketOf(0, 1500), c10::Error);
  EXPECT_THROW(EncoderGraphs::BucketOf(1501, 1500), c10::Error);
}

TEST(EncoderGraphBucketsTest, EveryBucketOnce) {
  EXPECT_EQ(EncoderGraphs::Buckets(120), (std::vector<int64_t>{50, 100, 120}));
  EXPECT_EQ(EncoderGraphs::Buckets(150), (std::vector<int64_t>{50, 100, 150}));
  const std::vector<int64_t> window = EncoderGraphs::Buckets(1500);
  EXPECT_EQ(window.size(), 30u);
  EXPECT_EQ(window.back(), 1500);
}

TEST(EncoderGraphsTest, TheCpuIsNeverSupported) {
  EXPECT_FALSE(EncoderGraphs::Supported(at::Device(at::kCPU)));
}

class EncoderGraphsModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = speechllm::testing::LoadFixtureModel();
    ASSERT_NE(model_, nullptr);
    mel_ = speechllm::testing::FixtureMel(*model_, "clip_b");  // 7.9 s: 397 conv positions
    ASSERT_TRUE(mel_.defined());
  }
  c10::InferenceMode inference_mode_;
  std::unique_ptr<Qwen2AudioModel> model_;
  at::Tensor mel_;
};

TEST_F(EncoderGraphsModelTest, PaddedSegmentsMatchTheUnpaddedPasses) {
  const AudioEncoder& encoder = model_->encoder();
  const at::Tensor conv = encoder.ConvStemOf(mel_);
  const int64_t max_positions = encoder.config().max_source_positions;
  for (int64_t positions : {2, 37, 100, 181, 395}) {
    ASSERT_LE(positions, conv.size(0));
    const at::Tensor rows = conv.narrow(0, 0, positions);
    const int64_t padding = EncoderGraphs::BucketOf(positions, max_positions) - positions;
    const at::Tensor padded = PaddedSegment(encoder, rows, padding, 0.0);
    for (bool batched : {false, true}) {
      const at::Tensor eager =
          encoder.EncodeBatch({{rows, 0, nullptr}}, nullptr,
                              batched ? EncoderPass::kBatched : EncoderPass::kPerItem)[0];
      ASSERT_EQ(padded.sizes(), eager.sizes());
      const double error = RelativeError(padded, eager);
      std::printf("%3ld positions + %2ld padding vs the %s pass: relative %.3g (bound 1e-5)\n",
                  static_cast<long>(positions), static_cast<long>(padding),
                  batched ? "batched" : "per-item", error);
      EXPECT_LE(error, 1e-5) << positions;
    }
  }
}

TEST_F(EncoderGraphsModelTest, PaddingNeverReachesTheSegment) {
  // Large padding rows (their queries and keys are computed too) change nothing of the segment's
  // rows, bit for bit, when the masking is right.
  const AudioEncoder& encoder = model_->encoder();
  const at::Tensor rows = encoder.ConvStemOf(mel_).narrow(0, 0, 131);
  const at::Tensor zeros = PaddedSegment(encoder, rows, 19, 0.0);
  const at::Tensor large = PaddedSegment(encoder, rows, 19, 300.0);
  EXPECT_TRUE(at::equal(zeros, large))
      << "max |diff| " << (zeros - large).abs().max().item<float>();
}

class EncoderGraphsGpuTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device (or a CPU libtorch)";
    // As in the tests' bodies: the project's kernels, and so the graphs, are off while autograd
    // records.
    c10::InferenceMode guard;
    if (!EncoderGraphs::Supported(at::Device("cuda:0")))
      GTEST_SKIP() << "this build or environment has no CUDA graphs";
  }
};

TEST_P(EncoderGraphsGpuTest, ReplaysMatchTheEagerPass) {
  c10::InferenceMode guard;
  RuntimeOptions options;
  options.device = "cuda:0";
  options.dtype = GetParam();
  auto loaded = Qwen2AudioModel::Load(speechllm::testing::GoldenDir() + "/model", options);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Qwen2AudioModel& model = **loaded;
  const AudioEncoder& encoder = model.encoder();
  const at::Tensor mel = speechllm::testing::FixtureMel(model, "clip_b");
  ASSERT_TRUE(mel.defined());
  const at::Tensor conv = encoder.ConvStemOf(mel);
  const double bound = GetParam() == "float32" ? 1e-5 : 3e-2;
  // 37 and 49 share the 50-position graph; 181 is odd (its last position is not pooled). Results
  // are kept as copies on the CPU, so that a later replay cannot change what they are compared
  // with.
  const std::vector<int64_t> lengths = {37, 49, 120, 181, 395};
  std::vector<at::Tensor> replayed, on_device;
  for (int64_t positions : lengths) {
    const at::Tensor rows = conv.narrow(0, 0, positions);
    on_device.push_back(encoder.EncodeBatch({{rows, 0, nullptr}})[0]);
    replayed.push_back(on_device.back().cpu());
    const at::Tensor eager =
        encoder.EncodeBatch({{rows, 0, nullptr}}, nullptr, EncoderPass::kPerItem)[0];
    ASSERT_EQ(replayed.back().sizes(), eager.sizes());
    const double error = RelativeError(replayed.back(), eager);
    std::printf("[%s] %3ld positions, graph vs eager: relative %.3g (bound %.0e)\n",
                GetParam().c_str(), static_cast<long>(positions), error, bound);
    EXPECT_LE(error, bound) << positions;
  }
  // Each result is a tensor of its own: later replays (37 and 49 share a graph) left it alone.
  for (size_t i = 0; i < lengths.size(); ++i) {
    EXPECT_TRUE(at::equal(on_device[i].cpu(), replayed[i])) << lengths[i];
  }
  ASSERT_TRUE(encoder.GraphsStatus().ok()) << encoder.GraphsStatus();
  EXPECT_EQ(encoder.NumSegmentGraphs(), 4);  // buckets 50, 150, 200, 400
  const auto same = [](const at::Tensor& out, const at::Tensor& kept) {
    return at::equal(out.cpu(), kept);
  };
  // Replays in another order, and two segments in one pass, give the same rows bit for bit.
  EXPECT_TRUE(same(encoder.EncodeBatch({{conv.narrow(0, 0, 37), 0, nullptr}})[0], replayed[0]));
  const std::vector<at::Tensor> pair = encoder.EncodeBatch(
      {{conv.narrow(0, 0, 181), 0, nullptr}, {conv.narrow(0, 0, 49), 0, nullptr}});
  ASSERT_EQ(pair.size(), 2u);
  EXPECT_TRUE(same(pair[0], replayed[3]));
  EXPECT_TRUE(same(pair[1], replayed[1]));
  // The clip through EncodeValidPrefix (the offline path) takes the graphs too.
  EXPECT_TRUE(same(encoder.EncodeValidPrefix(mel, 2 * 395), replayed[4]));
  // More segments than a pass replays run the batched eager pass: the same rows up to rounding.
  std::vector<EncoderWork> many;
  for (int64_t positions : lengths) many.push_back({conv.narrow(0, 0, positions), 0, nullptr});
  const std::vector<at::Tensor> batched = encoder.EncodeBatch(many);
  ASSERT_EQ(batched.size(), lengths.size());
  for (size_t i = 0; i < lengths.size(); ++i) {
    EXPECT_LE(RelativeError(batched[i], replayed[i]), bound) << lengths[i];
  }
  // Capturing the rest up front (as the runner does at start) keeps the graphs already there.
  const absl::Status captured = encoder.CaptureSegmentGraphs();
  ASSERT_TRUE(captured.ok()) << captured;
  EXPECT_EQ(encoder.NumSegmentGraphs(), 30);
  EXPECT_TRUE(same(encoder.EncodeBatch({{conv.narrow(0, 0, 120), 0, nullptr}})[0], replayed[2]));
  EXPECT_TRUE(same(encoder.EncodeBatch({{conv.narrow(0, 0, 181), 0, nullptr}})[0], replayed[3]));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, EncoderGraphsGpuTest, ::testing::Values("float32", "bfloat16"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace speechllm::engine
