// Block mode at the end of a segment (label model, tiny golden checkpoint): a last block of a
// single conv position pools to no audio token instead of failing the step (it did, with "Output
// size is too small", for every final_mode fast stream whose audio ended that way), and the blocks
// before it keep their output. Also the float16 overflow guard of every encoder layer (MODEL.md
// 2.2): clamped only where an inf or NaN appeared, other dtypes untouched.
#include <limits>

#include "engine/io/wav_reader.h"
#include "engine/model/layers.h"
#include "engine/model/qwen2_audio_model.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace speechllm::engine {
namespace {

TEST(EncoderBlockTest, OnePositionLastBlockGivesNoTokens) {
  RuntimeOptions options;
  options.dtype = "float32";
  auto model = Qwen2AudioModel::Load(speechllm::testing::GoldenDir() + "/model", options);
  ASSERT_TRUE(model.ok()) << model.status();
  auto samples = ReadMonoWavFile(speechllm::testing::GoldenDir() + "/clip_a.wav", 16000);
  ASSERT_TRUE(samples.ok()) << samples.status();
  auto features = (*model)->log_mel().ExtractValidPrefix(*samples);
  ASSERT_TRUE(features.ok()) << features.status();
  const at::Tensor mel = (*model)->FeaturesTensor(*features);
  ASSERT_GE(mel.size(1), 103);
  const AudioEncoder& encoder = (*model)->encoder();

  EncoderKvCache cache;
  const at::Tensor first = encoder.EncodeBlock(mel.narrow(1, 0, 101), 0, 50, &cache);
  EXPECT_EQ(first.size(0), 25);
  const at::Tensor last = encoder.EncodeBlock(mel.narrow(1, 98, 5), 50, 51, &cache);
  EXPECT_EQ(last.size(0), 0);
  EXPECT_EQ(last.size(1), (*model)->config().audio.d_model);
  EXPECT_EQ(cache.num_positions, 51);

  // The same 50 positions without the extra one give the same tokens.
  EncoderKvCache reference_cache;
  const at::Tensor reference = encoder.EncodeBlock(mel.narrow(1, 0, 101), 0, 50, &reference_cache);
  EXPECT_TRUE(at::equal(first, reference));
}

TEST(EncoderFloat16Guard, ClampsOnlyALayerOutputWithAnInfOrNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  const at::Tensor overflowed = at::tensor({1.0f, 65000.0f, -inf}).to(at::kHalf);
  const at::Tensor clamped = ClampFloat16Overflow(overflowed).to(at::kFloat);
  // 65000 is 64992 in float16; the bound 64504 rounds to 64512 in float16, as in HF.
  EXPECT_TRUE(at::equal(clamped, at::tensor({1.0f, 64512.0f, -64512.0f}))) << clamped;
  const at::Tensor finite = at::tensor({1.0f, 65000.0f}).to(at::kHalf);
  EXPECT_TRUE(at::equal(ClampFloat16Overflow(finite), finite)) << "no inf, no clamp (as HF)";
  const at::Tensor wide = at::tensor({1.0f, inf});
  EXPECT_TRUE(at::equal(ClampFloat16Overflow(wide), wide)) << "float32 is never clamped";
}

}  // namespace
}  // namespace speechllm::engine
