// EncodeBatch's batched attention (EncoderBatchAttention, the CUDA default) against its per-item
// attention (transformers' eager operations, the CPU default), on the CPU with the tiny golden
// checkpoint in float32 (label model): two passes over block-mode items of two sequences (one
// sequence with two blocks in the same pass) and a full segment without a cache. Outputs and the
// encoder caches left behind must agree, and the caches must not keep the full segment's rows; the
// measured errors are printed. Items of different shapes go to different padded products
// (buckets), so that a chunk is not padded to a full segment's rows.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <vector>

#include "engine/model/encoder_batch_attention.h"
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
      outputs[mode] = encoder.EncodeBatch(
          work, nullptr, mode == 1 ? EncoderPass::kBatched : EncoderPass::kPerItem);
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

// A pass of 50 one-second chunks of 50 rows (cached 100 to 1,450 positions) and one exact final's
// re-encode (500 rows): one padded product for all gave every chunk 500 query rows and 1,500 keys,
// about 13 times the pairs the items have; the buckets keep it within twice.
TEST(EncoderBatchBucketsTest, ItemsOfDifferentShapesAreNotPaddedToTheLargest) {
  c10::InferenceMode guard;
  std::vector<int64_t> new_rows, group_of_item, cached_rows;
  std::vector<bool> keep;
  int64_t real_pairs = 0;
  for (int64_t i = 0; i < 50; ++i) {
    new_rows.push_back(50);
    group_of_item.push_back(i);
    cached_rows.push_back(100 + 27 * i);
    keep.push_back(true);
    real_pairs += 50 * (100 + 27 * i + 50);
  }
  new_rows.push_back(500);  // the final: a group of its own without a cache
  group_of_item.push_back(50);
  cached_rows.push_back(0);
  keep.push_back(false);
  real_pairs += 500 * 500;
  const EncoderBatchAttention attention(new_rows, group_of_item, cached_rows, keep, at::kCPU);
  const int64_t one_product = 51 * 500 * (100 + 27 * 49 + 50);
  std::printf("%ld buckets: %ld padded pairs for %ld real (one product: %ld)\n",
              static_cast<long>(attention.num_buckets()),
              static_cast<long>(attention.padded_pairs()), static_cast<long>(real_pairs),
              static_cast<long>(one_product));
  EXPECT_LE(attention.padded_pairs(), 2 * real_pairs);
  EXPECT_GE(attention.num_buckets(), 2);
  EXPECT_LE(attention.num_buckets(), 4);  // a few products per layer, not one per item
}

}  // namespace
}  // namespace speechllm::engine
