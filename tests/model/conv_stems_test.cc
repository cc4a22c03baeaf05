// AudioEncoder::ConvStems (the batched im2col conv stem the runner uses on CUDA) against the
// per-item convolutions, on the CPU with the tiny golden checkpoint in float32 (label model): a
// whole segment, a first block and a later block in one call must give ConvStemOf's and
// ConvBlock's rows; the measured errors are printed.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <vector>

#include "engine/model/qwen2_audio_model.h"
#include "gtest/gtest.h"
#include "tests/model/fixture_model.h"

namespace speechllm::engine {
namespace {

TEST(ConvStemsTest, MatchesThePerItemConvolutions) {
  c10::InferenceMode guard;
  const auto model = speechllm::testing::LoadFixtureModel();
  ASSERT_NE(model, nullptr);
  std::vector<at::Tensor> mels;  // [num_mel_bins, frames] per clip
  for (const char* name : {"clip_a", "clip_b"}) {
    mels.push_back(speechllm::testing::FixtureMel(*model, name));
    ASSERT_TRUE(mels.back().defined());
  }
  const AudioEncoder& encoder = model->encoder();
  // Frame-major host copies of the windows, as the runner holds them.
  const at::Tensor segment = mels[1].t().contiguous();                        // the whole of clip_b
  const at::Tensor first_block = mels[0].narrow(1, 0, 101).t().contiguous();  // positions 0..50
  const at::Tensor later_block = mels[0].narrow(1, 98, 63).t().contiguous();  // positions 50..80
  using Kind = ConvStemInput::Kind;
  const std::vector<ConvStemInput> inputs = {
      {Kind::kFirstBlock, first_block.data_ptr<float>(), first_block.size(0)},
      {Kind::kSegment, segment.data_ptr<float>(), segment.size(0)},
      {Kind::kLaterBlock, later_block.data_ptr<float>(), later_block.size(0)}};
  const std::vector<at::Tensor> expected = {encoder.ConvBlock(mels[0].narrow(1, 0, 101), 0, 50),
                                            encoder.ConvStemOf(mels[1]),
                                            encoder.ConvBlock(mels[0].narrow(1, 98, 63), 50, 80)};
  const std::vector<at::Tensor> out = encoder.ConvStems(inputs, at::kCPU);
  ASSERT_EQ(out.size(), expected.size());
  for (size_t i = 0; i < out.size(); ++i) {
    ASSERT_EQ(out[i].sizes(), expected[i].sizes()) << "item " << i;
    const double error = ((out[i] - expected[i]).norm() / expected[i].norm()).item<double>();
    const double max_abs = (out[i] - expected[i]).abs().max().item<double>();
    std::printf("item %zu (%ld positions): relative error %.3g, max abs %.3g\n", i,
                static_cast<long>(out[i].size(0)), error, max_abs);
    EXPECT_LE(error, 1e-5);
  }
}

TEST(ConvStemsTest, RefusesTooFewFrames) {
  c10::InferenceMode guard;
  const auto model = speechllm::testing::LoadFixtureModel();
  ASSERT_NE(model, nullptr);
  const std::vector<float> frames(2 * model->config().audio.num_mel_bins, 0.0f);
  EXPECT_THROW(
      model->encoder().ConvStems({{ConvStemInput::Kind::kLaterBlock, frames.data(), 2}}, at::kCPU),
      c10::Error);
}

}  // namespace
}  // namespace speechllm::engine
