// The trainer's differentiable paths are the inference code (label model, tiny golden checkpoint):
// AudioEncoder::ForwardWithMask equals Forward (key padding) and block mode (block-causal mask),
// and Decoder::ForwardDense equals the paged KV-cache Forward, each to float32 rounding. Prints the
// measured differences.
#include <limits>

#include "engine/io/wav_reader.h"
#include "engine/model/audio_lengths.h"
#include "engine/model/kv_pool.h"
#include "engine/model/qwen2_audio_model.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace speechllm::engine {
namespace {

std::unique_ptr<Qwen2AudioModel> TinyModel() {
  RuntimeOptions options;
  options.dtype = "float32";
  auto model = Qwen2AudioModel::Load(speechllm::testing::GoldenDir() + "/model", options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

LogMelFeatures ClipFeatures(const Qwen2AudioModel& model, const std::string& clip) {
  auto samples = ReadMonoWavFile(speechllm::testing::GoldenDir() + "/" + clip + ".wav", 16000);
  EXPECT_TRUE(samples.ok()) << samples.status();
  auto features = model.log_mel().ExtractValidPrefix(*samples);
  EXPECT_TRUE(features.ok()) << features.status();
  return *features;
}

double MaxAbs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

// [1, mel, frames] zero-padded to a multiple of 4 frames, and its positions.
at::Tensor PaddedMel(const Qwen2AudioModel& model, const LogMelFeatures& f, int64_t* positions) {
  const int64_t frames = (f.num_frames + 3) / 4 * 4;
  *positions = frames / 2;
  return at::constant_pad_nd(model.FeaturesTensor(f), {0, frames - f.num_frames}).unsqueeze(0);
}

at::Tensor Additive(const at::Tensor& allowed) {
  return at::zeros(allowed.sizes())
      .masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity());
}

TEST(TrainingPathsTest, EncoderWithPaddingMaskEqualsForward) {
  auto model = TinyModel();
  ASSERT_NE(model, nullptr);
  const LogMelFeatures f = ClipFeatures(*model, "clip_a");
  int64_t positions = 0;
  const at::Tensor mel = PaddedMel(*model, f, &positions);
  const int64_t valid = ConvOutputLength(f.num_valid_frames);
  const at::Tensor index = at::arange(positions);
  const at::Tensor allowed = (index < valid).unsqueeze(0).expand({positions, positions});
  const at::Tensor trained =
      model->encoder().ForwardWithMask(mel, Additive(allowed).view({1, 1, positions, positions}));
  const at::Tensor reference = model->encoder().Forward(mel, {valid});
  const double error = MaxAbs(trained, reference);
  std::printf("encoder ForwardWithMask vs Forward: max |diff| %.3g\n", error);
  EXPECT_LT(error, 1e-5);
}

TEST(TrainingPathsTest, BlockCausalMaskEqualsBlockMode) {
  auto model = TinyModel();
  ASSERT_NE(model, nullptr);
  const LogMelFeatures f = ClipFeatures(*model, "clip_b");
  int64_t positions = 0;
  const at::Tensor mel = PaddedMel(*model, f, &positions);
  const int64_t valid = ConvOutputLength(f.num_valid_frames);
  const int64_t tokens = AudioTokenCount(f.num_valid_frames);
  for (int64_t block : {26, 50, 100}) {
    const at::Tensor index = at::arange(positions);
    const at::Tensor chunk = at::floor_divide(index, block);
    const at::Tensor allowed =
        (index < valid).unsqueeze(0).logical_and(chunk.unsqueeze(0) <= chunk.unsqueeze(1));
    const at::Tensor trained =
        model->encoder()
            .ForwardWithMask(mel, Additive(allowed).view({1, 1, positions, positions}))
            .squeeze(0)
            .narrow(0, 0, tokens);
    EncoderKvCache cache;
    std::vector<at::Tensor> blocks;
    const at::Tensor clip_mel = model->FeaturesTensor(f);
    for (int64_t first = 0; first < valid; first += block) {
      const int64_t end = std::min(valid, first + block);
      const int64_t first_frame = first == 0 ? 0 : 2 * first - 2;
      const int64_t frames = 2 * (end - first) + (first == 0 ? 1 : 3);
      blocks.push_back(model->encoder().EncodeBlock(clip_mel.narrow(1, first_frame, frames), first,
                                                    end, &cache));
    }
    const at::Tensor streamed = at::cat(blocks).narrow(0, 0, tokens);
    const double error = MaxAbs(trained, streamed);
    std::printf("block of %lld positions: ForwardWithMask vs EncodeBlock: max |diff| %.3g\n",
                static_cast<long long>(block), error);
    EXPECT_LT(error, 1e-5) << "block " << block;
  }
}

TEST(TrainingPathsTest, DecoderForwardDenseEqualsPagedForward) {
  auto model = TinyModel();
  ASSERT_NE(model, nullptr);
  const Decoder& decoder = model->decoder();
  const std::vector<int64_t> lengths = {13, 7};
  const int64_t max_length = 13, block_size = 16;
  at::manual_seed(3);
  const at::Tensor ids = at::randint(0, model->config().text.vocab_size, {2, max_length});
  const at::Tensor hidden = decoder.Embed(ids.flatten()).view({2, max_length, -1});
  const at::Tensor index = at::arange(max_length);
  std::vector<at::Tensor> masks;
  for (int64_t length : lengths) {
    masks.push_back(Additive(
        (index.unsqueeze(0) <= index.unsqueeze(1)).logical_and((index < length).unsqueeze(0))));
  }
  const at::Tensor dense = decoder.ForwardDense(hidden, at::stack(masks).unsqueeze(1));
  for (size_t s = 0; s < lengths.size(); ++s) {
    KvPool kv(model->config().text, 1, block_size, model->dtype(), model->device());
    DecoderSequence sequence;
    sequence.block_table = {0};
    sequence.num_new_tokens = lengths[s];
    DecoderBatch batch;
    batch.sequences = {sequence};
    batch.Prepare(block_size, model->device(), decoder.attention_format());
    const at::Tensor paged = decoder.Forward(hidden[s].narrow(0, 0, lengths[s]), batch, &kv);
    const double error = MaxAbs(dense[s].narrow(0, 0, lengths[s]), paged);
    std::printf("sequence %zu (%lld tokens): ForwardDense vs paged Forward: max |diff| %.3g\n", s,
                static_cast<long long>(lengths[s]), error);
    EXPECT_LT(error, 1e-5);
  }
}

}  // namespace
}  // namespace speechllm::engine
