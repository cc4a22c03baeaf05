// The fused q/k/v (decoder and audio encoder) and gate/up (decoder) products, which inference runs,
// against the checkpoint's separate products, which run with autograd on (the trainer), on the tiny
// golden checkpoint (label model): the same outputs, and a weight changed in place under its
// checkpoint name reaches both.
#include <ATen/core/grad_mode.h>

#include <cstdio>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

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

// `run(autograd)`: with autograd on the separate products, off the fused one. Checks that both
// agree, then changes the weights named `names` in place among `parameters` (as the trainer does)
// and checks that the change reached the fused product and that both still agree.
void ExpectFusedFollowsSeparate(const std::string& what,
                                const std::function<at::Tensor(bool autograd)>& run,
                                const std::vector<NamedTensor>& parameters,
                                const std::set<std::string>& names) {
  const at::Tensor separate = run(/*autograd=*/true), fused = run(/*autograd=*/false);
  std::printf("%s, fused against separate products: relative %.3g\n", what.c_str(),
              Relative(fused, separate));
  EXPECT_LE(Relative(fused, separate), 1e-6);
  size_t changed = 0;
  for (const NamedTensor& named : parameters) {
    if (names.count(named.name) == 0) continue;
    at::NoGradGuard no_grad;
    named.tensor.mul_(1.5).add_(0.01);
    ++changed;
  }
  ASSERT_EQ(changed, names.size());
  const at::Tensor separate_after = run(/*autograd=*/true), fused_after = run(/*autograd=*/false);
  std::printf("%s after the change: fused moved by %.3g, fused against separate %.3g\n",
              what.c_str(), Relative(fused_after, fused), Relative(fused_after, separate_after));
  EXPECT_GT(Relative(fused_after, fused), 1e-3);
  EXPECT_LE(Relative(fused_after, separate_after), 1e-6);
}

TEST(FusedProjectionsTest, InferenceEqualsTheCheckpointsSeparateProducts) {
  const auto model = speechllm::testing::LoadFixtureModel();
  ASSERT_NE(model, nullptr);
  const Decoder& decoder = model->decoder();
  at::manual_seed(3);
  const at::Tensor hidden = at::randn({2, 9, decoder.config().hidden_size});
  ExpectFusedFollowsSeparate("decoder",
                             [&](bool autograd) { return RunLayers(decoder, hidden, autograd); },
                             decoder.Parameters(),
                             {"language_model.model.layers.1.self_attn.k_proj.weight",
                              "language_model.model.layers.0.self_attn.v_proj.bias",
                              "language_model.model.layers.0.mlp.up_proj.weight"});
}

// Whisper's k_proj has no bias: the fused bias holds zeros there and the checkpoint gains none.
TEST(FusedProjectionsTest, TheEncoderEqualsItsSeparateProducts) {
  const auto model = speechllm::testing::LoadFixtureModel();
  ASSERT_NE(model, nullptr);
  const at::Tensor mel = speechllm::testing::FixtureMel(*model, "clip_a");
  ASSERT_TRUE(mel.defined());
  const AudioEncoder& encoder = model->encoder();
  const std::vector<NamedTensor> parameters = encoder.Parameters();
  for (const NamedTensor& named : parameters) {
    EXPECT_NE(named.name, "audio_tower.layers.0.self_attn.k_proj.bias");
  }
  ExpectFusedFollowsSeparate("encoder",
                             [&](bool autograd) {
                               at::AutoGradMode mode(autograd);
                               return encoder.EncodeValidPrefix(mel, mel.size(1)).detach();
                             },
                             parameters,
                             {"audio_tower.layers.0.self_attn.k_proj.weight",
                              "audio_tower.layers.1.self_attn.v_proj.bias"});
}

}  // namespace
}  // namespace speechllm::engine
