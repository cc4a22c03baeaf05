// The fused q/k/v (decoder and audio encoder) and gate/up (decoder) products, which inference runs,
// against the checkpoint's separate products, which run with autograd on (the trainer), on the tiny
// golden checkpoint (label model): the same outputs, and a weight changed in place under its
// checkpoint name reaches both.
#include <ATen/core/grad_mode.h>

#include <cstdio>
#include <limits>
#include <string>

#include "engine/model/qwen2_audio_model.h"
#include "gtest/gtest.h"
#include "tests/model/fixture_model.h"

namespace speechllm::engine {
namespace {

double Relative(const at::Tensor& got, const at::Tensor& expected) {
  return ((got - expected).norm() / expected.norm()).item<double>();
}

// Every layer over two random sequences of 9 tokens, causal, with autograd on or off.
at::Tensor RunLayers(const Decoder& decoder, const at::Tensor& hidden, bool autograd) {
  const int64_t tokens = hidden.size(1);
  const at::Tensor mask = at::full({tokens, tokens}, -std::numeric_limits<float>::infinity())
                              .triu(1)
                              .view({1, 1, tokens, tokens})
                              .expand({hidden.size(0), 1, tokens, tokens});
  at::AutoGradMode mode(autograd);
  return decoder.ForwardDense(hidden, mask).detach();
}

TEST(FusedProjectionsTest, InferenceEqualsTheCheckpointsSeparateProducts) {
  const auto model = speechllm::testing::LoadFixtureModel();
  ASSERT_NE(model, nullptr);
  const Decoder& decoder = model->decoder();
  at::manual_seed(3);
  const at::Tensor hidden = at::randn({2, 9, decoder.config().hidden_size});
  const at::Tensor separate = RunLayers(decoder, hidden, /*autograd=*/true);
  const at::Tensor fused = RunLayers(decoder, hidden, /*autograd=*/false);
  std::printf("fused against separate products: relative %.3g\n", Relative(fused, separate));
  EXPECT_LE(Relative(fused, separate), 1e-6);

  // What the trainer does to a weight (in place, by checkpoint name) is what inference reads.
  int changed = 0;
  for (const NamedTensor& named : decoder.Parameters()) {
    if (named.name == "language_model.model.layers.1.self_attn.k_proj.weight" ||
        named.name == "language_model.model.layers.0.self_attn.v_proj.bias" ||
        named.name == "language_model.model.layers.0.mlp.up_proj.weight") {
      at::NoGradGuard no_grad;
      named.tensor.mul_(1.5).add_(0.01);
      ++changed;
    }
  }
  ASSERT_EQ(changed, 3);
  const at::Tensor separate_after = RunLayers(decoder, hidden, /*autograd=*/true);
  const at::Tensor fused_after = RunLayers(decoder, hidden, /*autograd=*/false);
  std::printf("after the change: fused moved by %.3g, fused against separate %.3g\n",
              Relative(fused_after, fused), Relative(fused_after, separate_after));
  EXPECT_GT(Relative(fused_after, fused), 1e-3);
  EXPECT_LE(Relative(fused_after, separate_after), 1e-6);
}

at::Tensor RunEncoder(const AudioEncoder& encoder, const at::Tensor& mel, bool autograd) {
  at::AutoGradMode mode(autograd);
  return encoder.EncodeValidPrefix(mel, mel.size(1)).detach();
}

// Whisper's k_proj has no bias: the fused bias holds zeros there and the checkpoint gains none.
TEST(FusedProjectionsTest, TheEncoderEqualsItsSeparateProducts) {
  const auto model = speechllm::testing::LoadFixtureModel();
  ASSERT_NE(model, nullptr);
  const at::Tensor mel = speechllm::testing::FixtureMel(*model, "clip_a");
  ASSERT_TRUE(mel.defined());
  const AudioEncoder& encoder = model->encoder();
  const at::Tensor separate = RunEncoder(encoder, mel, /*autograd=*/true);
  const at::Tensor fused = RunEncoder(encoder, mel, /*autograd=*/false);
  std::printf("encoder, fused against separate products: relative %.3g\n",
              Relative(fused, separate));
  EXPECT_LE(Relative(fused, separate), 1e-6);
  int changed = 0;
  for (const NamedTensor& named : encoder.Parameters()) {
    EXPECT_NE(named.name, "audio_tower.layers.0.self_attn.k_proj.bias");
    if (named.name == "audio_tower.layers.0.self_attn.k_proj.weight" ||
        named.name == "audio_tower.layers.1.self_attn.v_proj.bias") {
      at::NoGradGuard no_grad;
      named.tensor.mul_(1.5).add_(0.01);
      ++changed;
    }
  }
  ASSERT_EQ(changed, 2);
  const at::Tensor separate_after = RunEncoder(encoder, mel, /*autograd=*/true);
  const at::Tensor fused_after = RunEncoder(encoder, mel, /*autograd=*/false);
  std::printf("after the change: fused moved by %.3g, fused against separate %.3g\n",
              Relative(fused_after, fused), Relative(fused_after, separate_after));
  EXPECT_GT(Relative(fused_after, fused), 1e-3);
  EXPECT_LE(Relative(fused_after, separate_after), 1e-6);
}

}  // namespace
}  // namespace speechllm::engine
