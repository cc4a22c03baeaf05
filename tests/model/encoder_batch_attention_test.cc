// EncodeBatch's batched attention (EncoderBatchAttention, the CUDA default) against its per-item
// attention (transformers' eager operations, the CPU default), on the CPU with the tiny golden
// checkpoint in float32 (label model): two passes over block-mode items of two sequences (one
// sequence with two blocks in the same pass) and a full segment without a cache. Outputs and the
// encoder caches left behind must agree, and the caches must not keep the full segment's rows; the
// measured errors are printed.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <vector>

#include "engine/model/qwen2_audio_model.h"
#include "gtest/gtest.h"
#include "tests/model/fixture_model.h"

namespace speechllm::engine {
namespace {

constexpr double kTolerance = 1e-5;  // float32: SDPA against matmul + softmax

double RelativeError(const at::Tensor& out, const at::Tensor& ref) {
  return ((out - ref).norm() / ref.norm().clamp_min(1e-12)).item<double>();
}

class EncoderBatchAttentionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = speechllm::testing::LoadFixtureModel();
    ASSERT_NE(model_, nullptr);
    for (const char* name : {"clip_a", "clip_b"}) {
      mels_.push_back(speechllm::testing::FixtureMel(*model_, name));
      ASSERT_TRUE(mels_.back().defined());
    }
  }

  // Conv rows of block [first, end) of clip `clip` (AudioEncoder::ConvBlock's frame window).
  at::Tensor Block(int clip, int64_t first, int64_t end) const {
    const int64_t frame = first == 0 ? 0 : 2 * first - 2;
    return model_->encoder().ConvBlock(mels_[clip].narrow(1, frame, 2 * end - frame + 1), first,
                                       end);
  }

  std::unique_ptr<Qwen2AudioModel> model_;
  std::vector<at::Tensor> mels_;
};

TEST_F(EncoderBatchAttentionTest, MatchesPerItemAttentionWithCaches) {
  c10::InferenceMode guard;
  const AudioEncoder& encoder = model_->encoder();
  // [mode][sequence]: the caches of sequences A (clip_a) and B (clip_b) in each mode.
  EncoderKvCache caches[2][2];
  const at::Tensor full = encoder.ConvStemOf(mels_[1]).narrow(0, 0, 120);
  for (int pass = 0; pass < 2; ++pass) {
    std::vector<at::Tensor> outputs[2];
    for (int mode = 0; mode < 2; ++mode) {
      EncoderKvCache* a = &caches[mode][0];
      EncoderKvCache* b = &caches[mode][1];
      std::vector<EncoderWork> work;
      if (pass == 0) {  // A 0..50 and 50..80 in one pass, B 0..40, a full segment between them
        work = {{Block(0, 0, 50), 0, a},
                {Block(1, 0, 40), 0, b},
                {full, 0, nullptr},
                {Block(0, 50, 80), 50, a}};
      } else {  // B 40..90, A 80..81 (one position: no pooled row)
        work = {{Block(1, 40, 90), 40, b}, {Block(0, 80, 81), 80, a}};
      }
      outputs[mode] = encoder.EncodeBatch(work, nullptr, /*batched_attention=*/mode == 1);
    }
    if (pass == 0) {  // the batched caches share the rows of A and B only, not the full segment's
      const EncoderKvCache& a = caches[1][0];
      const EncoderKvCache& b = caches[1][1];
      for (size_t l = 0; l < a.keys.size(); ++l) {
        EXPECT_EQ(a.keys[l].storage().nbytes(), a.keys[l].nbytes() + b.keys[l].nbytes()) << l;
        EXPECT_EQ(b.values[l].storage().nbytes(), a.values[l].nbytes() + b.values[l].nbytes());
      }
    }
    ASSERT_EQ(outputs[0].size(), outputs[1].size());
    for (size_t i = 0; i < outputs[0].size(); ++i) {
      ASSERT_EQ(outputs[0][i].sizes(), outputs[1][i].sizes());
      if (outputs[0][i].numel() == 0) continue;
      const double error = RelativeError(outputs[1][i], outputs[0][i]);
      std::printf("pass %d item %zu (%ld rows): relative error %.3g\n", pass, i,
                  static_cast<long>(outputs[0][i].size(0)), error);
      EXPECT_LE(error, kTolerance);
    }
  }
  for (int s = 0; s < 2; ++s) {
    const EncoderKvCache& per_item = caches[0][s];
    const EncoderKvCache& batched = caches[1][s];
    EXPECT_EQ(per_item.num_positions, batched.num_positions);
    ASSERT_EQ(per_item.keys.size(), batched.keys.size());
    double worst = 0;
    for (size_t l = 0; l < per_item.keys.size(); ++l) {
      ASSERT_EQ(per_item.keys[l].sizes(), batched.keys[l].sizes());
      worst = std::max({worst, RelativeError(batched.keys[l], per_item.keys[l]),
                        RelativeError(batched.values[l], per_item.values[l])});
    }
    std::printf("sequence %d cache (%ld positions): worst relative error %.3g\n", s,
                static_cast<long>(batched.num_positions), worst);
    EXPECT_LE(worst, kTolerance);
  }
  EXPECT_EQ(caches[1][0].num_positions, 81);
  EXPECT_EQ(caches[1][1].num_positions, 90);
}

}  // namespace
}  // namespace speechllm::engine
