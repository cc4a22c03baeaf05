// Golden parity (label model, and label gpu with --device=cuda): every tensor of a Hugging
// Face golden fixture (MODEL.md 10) against this engine, in float32 and bfloat16. Data-driven: it
// checks whatever keys the fixture holds (any layer count, optional real_features_NAME /
// real_mask_NAME) and fails on keys it does not understand. Usage: golden_parity_test [FIXTURE_DIR]
// [gtest flags].
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <regex>

#include "engine/model/audio_lengths.h"
#include "engine/model/encoder_graphs.h"
#include "engine/model/offline_transcriber.h"
#include "engine/model/qwen2_audio_model.h"
#include "gtest/gtest.h"
#include "tests/model/golden_fixture.h"

namespace speechllm::engine {
namespace {

using speechllm::testing::Compare;
using speechllm::testing::GoldenFixture;
using speechllm::testing::TensorErrors;

// Tolerances of issue 2 (float32) and the bfloat16 bound on logits.
constexpr double kFloat32Relative = 1e-4;
constexpr double kBFloat16LogitsRelative = 3e-2;
// bfloat16 hidden states are reported and held to a loose sanity bound only.
constexpr double kBFloat16SanityRelative = 1e-1;

std::string& Device() {
  static std::string device = "cpu";
  return device;
}

std::string ClipName(const std::string& letter) { return "clip_" + letter; }

class GoldenParityTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (Device() != "cpu" && !at::hasCUDA()) GTEST_SKIP() << "no CUDA device: GPU parity needs one";
    fixture_ = GoldenFixture::Open();
    ASSERT_NE(fixture_, nullptr);
    static std::map<std::string, std::unique_ptr<Qwen2AudioModel>> models;
    auto& model = models[GetParam() + "@" + Device()];
    if (model == nullptr) {
      RuntimeOptions options;
      options.device = Device();
      options.dtype = GetParam();
      auto loaded = Qwen2AudioModel::Load(GoldenFixture::Directory() + "/model", options);
      ASSERT_TRUE(loaded.ok()) << loaded.status();
      model = std::move(loaded).value();
    }
    model_ = model.get();
  }

  bool IsFloat32() const { return GetParam() == "float32"; }
  // Prints the errors and checks them against the bound for this dtype.
  void Check(const std::string& what, const at::Tensor& out, const at::Tensor& ref,
             double float32_bound, double bf16_bound = kBFloat16SanityRelative) {
    const TensorErrors e = Compare(out, ref);
    const double bound = IsFloat32() ? float32_bound : bf16_bound;
    std::printf("[%s %s] %-36s relative %.3g  max |err| %.3g  (bound %.0e)\n", GetParam().c_str(),
                Device().c_str(), what.c_str(), e.relative, e.max_abs, bound);
    EXPECT_LE(e.relative, bound) << what;
  }
  at::Tensor PaddedFeatures(int64_t batch_index) {
    return fixture_->Get("input_features").select(0, batch_index).to(model_->device());
  }
  int64_t ValidFrames(int64_t batch_index) {
    return fixture_->Get("feature_attention_mask").select(0, batch_index).sum().item<int64_t>();
  }
  // Keys matching `pattern`, with the first capture group.
  std::vector<std::pair<std::string, std::string>> Matching(const std::string& pattern) {
    std::vector<std::pair<std::string, std::string>> out;
    const std::regex re(pattern);
    for (const std::string& key : fixture_->Keys()) {
      std::smatch m;
      if (std::regex_match(key, m, re)) out.emplace_back(key, m.size() > 1 ? m[1].str() : "");
    }
    return out;
  }

  c10::InferenceMode inference_mode_;
  std::unique_ptr<GoldenFixture> fixture_;
  const Qwen2AudioModel* model_ = nullptr;
};

TEST_P(GoldenParityTest, MelFilters) {
  if (!fixture_->Has("mel_filters")) return;
  const auto& dense = model_->log_mel().filter_bank().dense();
  const at::Tensor ours =
      at::tensor(std::vector<double>(dense.begin(), dense.end())).view({-1, 128});
  Check("mel_filters", ours, fixture_->Get("mel_filters"), 1e-6, 1e-6);
}

TEST_P(GoldenParityTest, InputFeaturesMaskAndLengths) {
  if (!fixture_->Has("input_features")) return;
  const at::Tensor golden = fixture_->Get("input_features");
  const at::Tensor mask = fixture_->Get("feature_attention_mask");
  for (int64_t b = 0; b < golden.size(0); ++b) {
    const std::string name = ClipName(b == 0 ? "a" : "b");
    const LogMelFeatures features = model_->log_mel().ExtractPadded(fixture_->Clip(name));
    const at::Tensor ours =
        at::tensor(features.values).view({features.num_mel_bins, features.num_frames});
    const TensorErrors e = Compare(ours, golden.select(0, b));
    std::printf(
        "[%s] input_features %s: max |err| %.3g (bound 1e-3), mean |err| %.3g (bound 1e-5)\n",
        GetParam().c_str(), name.c_str(), e.max_abs, e.mean_abs);
    EXPECT_LE(e.max_abs, 1e-3);
    EXPECT_LE(e.mean_abs, 1e-5);
    EXPECT_EQ(features.num_valid_frames, mask.select(0, b).sum().item<int64_t>());
    if (fixture_->Has("audio_output_lengths")) {
      EXPECT_EQ(AudioTokenCount(features.num_valid_frames),
                fixture_->Get("audio_output_lengths")[b].item<int64_t>());
    }
  }
}

TEST_P(GoldenParityTest, EncoderHiddenStatesOfClipA) {
  const auto keys = Matching("encoder_hidden_(\\d+)_clip_a");
  if (keys.empty()) return;
  const int64_t valid_frames = ValidFrames(0);
  const int64_t conv_positions = ConvOutputLength(valid_frames);
  // Hugging Face's padded 30 s run with the key-padding mask: every row is comparable.
  std::vector<at::Tensor> padded;
  model_->encoder().Forward(PaddedFeatures(0).unsqueeze(0), {conv_positions}, &padded);
  // The engine's valid-prefix run: only the valid rows exist.
  std::vector<at::Tensor> prefix;
  const at::Tensor features =
      PaddedFeatures(0).narrow(1, 0, std::min<int64_t>(valid_frames + 2, 3000));
  model_->encoder().EncodeValidPrefix(features, valid_frames, &prefix);
  ASSERT_EQ(keys.size(), padded.size())
      << "fixture and model disagree on the number of encoder layers";
  for (const auto& [key, index_text] : keys) {
    const size_t i = std::stoul(index_text);
    ASSERT_LT(i, padded.size());
    const at::Tensor ref = fixture_->Get(key);
    Check(key + " (padded, all rows)", padded[i].squeeze(0), ref, kFloat32Relative);
    const int64_t rows = prefix[i].size(0);
    EXPECT_EQ(rows, i + 1 == padded.size() ? AudioTokenCount(valid_frames) : conv_positions);
    Check(key + " (valid prefix)", prefix[i], ref.narrow(0, 0, rows), kFloat32Relative);
  }
}

TEST_P(GoldenParityTest, EncoderLastHiddenStateOfTheMaskedBatch) {
  if (!fixture_->Has("encoder_last_hidden_state")) return;
  const at::Tensor features = fixture_->Get("input_features").to(model_->device());
  std::vector<int64_t> conv_positions;
  for (int64_t b = 0; b < features.size(0); ++b)
    conv_positions.push_back(ConvOutputLength(ValidFrames(b)));
  const at::Tensor out = model_->encoder().Forward(features, conv_positions);
  const at::Tensor ref = fixture_->Get("encoder_last_hidden_state");
  Check("encoder_last_hidden_state (batch)", out, ref, kFloat32Relative);
  for (int64_t b = 0; b < features.size(0); ++b) {
    const int64_t valid = ValidFrames(b);
    const at::Tensor prefix = model_->encoder().EncodeValidPrefix(
        features.select(0, b).narrow(1, 0, std::min<int64_t>(valid + 2, 3000)), valid);
    Check("encoder_last_hidden_state[" + std::to_string(b) + "] (prefix)", prefix,
          ref.select(0, b).narrow(0, 0, prefix.size(0)), kFloat32Relative);
    // What the whole-segment CUDA graphs compute (EncoderGraphs), here eagerly: the segment padded
    // to its length bucket, the padding keys masked.
    const int64_t positions = ConvOutputLength(valid);
    const at::Tensor conv =
        model_->encoder().ConvStemOf(features.select(0, b)).narrow(0, 0, positions);
    const int64_t bucket =
        EncoderGraphs::BucketOf(positions, model_->config().audio.max_source_positions);
    const at::Tensor padded =
        at::constant_pad_nd(conv, {0, 0, 0, bucket - positions});  // zero rows after the segment
    const at::Tensor segment =
        model_->encoder()
            .EncodePaddedSegment(padded,
                                 at::scalar_tensor(positions, padded.options().dtype(at::kLong)))
            .narrow(0, 0, positions / 2);
    Check("encoder_last_hidden_state[" + std::to_string(b) + "] (bucket " + std::to_string(bucket) +
              ")",
          segment, ref.select(0, b).narrow(0, 0, positions / 2), kFloat32Relative);
  }
}

TEST_P(GoldenParityTest, AudioEmbeddingsFromTheWav) {
  for (const auto& [key, letter] : Matching("audio_embeds_([a-z])")) {
    auto features = model_->log_mel().ExtractValidPrefix(fixture_->Clip(ClipName(letter)));
    ASSERT_TRUE(features.ok()) << features.status();
    Check(key, model_->EncodeClip(*features), fixture_->Get(key), kFloat32Relative);
  }
}

// Decoder hidden states and logits for the fixture's prompt with this engine's audio embeddings.
TEST_P(GoldenParityTest, DecoderHiddenStatesAndLogits) {
  for (const auto& [key, letter] : Matching("logits_([a-z])")) {
    const std::string ids_key = "input_ids_" + letter;
    ASSERT_TRUE(fixture_->Has(ids_key)) << key << " needs " << ids_key;
    const at::Tensor ids_tensor = fixture_->Get(ids_key).reshape(-1).to(at::kLong);
    const std::vector<int64_t> ids(ids_tensor.data_ptr<int64_t>(),
                                   ids_tensor.data_ptr<int64_t>() + ids_tensor.numel());
    auto features = model_->log_mel().ExtractValidPrefix(fixture_->Clip(ClipName(letter)));
    ASSERT_TRUE(features.ok());
    auto embeddings = model_->EmbedPrompt(ids, model_->EncodeClip(*features));
    ASSERT_TRUE(embeddings.ok()) << embeddings.status();
    const int64_t length = static_cast<int64_t>(ids.size());
    KvPool kv(model_->config().text, (length + 15) / 16, 16, model_->dtype(), model_->device());
    DecoderBatch batch;
    batch.sequences.push_back(DecoderSequence{length, 0, {}});
    for (int64_t b = 0; b < kv.num_blocks(); ++b) batch.sequences[0].block_table.push_back(b);
    batch.Prepare(16, model_->device(), model_->decoder().attention_format());
    std::vector<at::Tensor> hidden_states;
    const at::Tensor normed = model_->decoder().Forward(*embeddings, batch, &kv, &hidden_states);
    for (const auto& [hidden_key, index_text] : Matching("lm_hidden_(\\d+)_clip_" + letter)) {
      const size_t i = std::stoul(index_text);
      ASSERT_LT(i, hidden_states.size());
      Check(hidden_key, hidden_states[i], fixture_->Get(hidden_key), kFloat32Relative);
    }
    Check(key, model_->decoder().Logits(normed), fixture_->Get(key).squeeze(0), kFloat32Relative,
          kBFloat16LogitsRelative);
  }
}

TEST_P(GoldenParityTest, GreedyTokens) {
  for (const auto& [key, letter] : Matching("greedy_([a-z])")) {
    const at::Tensor ids_tensor = fixture_->Get("input_ids_" + letter).reshape(-1).to(at::kLong);
    const std::vector<int64_t> prompt(ids_tensor.data_ptr<int64_t>(),
                                      ids_tensor.data_ptr<int64_t>() + ids_tensor.numel());
    const at::Tensor golden = fixture_->Get(key).to(at::kLong);
    RuntimeOptions options;
    options.device = Device();
    options.dtype = GetParam();
    auto transcriber = OfflineTranscriber::Create(GoldenFixture::Directory() + "/model", options);
    ASSERT_TRUE(transcriber.ok()) << transcriber.status();
    auto result =
        (*transcriber)->Transcribe(fixture_->Clip(ClipName(letter)), prompt, golden.numel());
    ASSERT_TRUE(result.ok()) << result.status();
    int matching = 0;
    for (int64_t i = 0; i < golden.numel(); ++i) {
      matching += i < static_cast<int64_t>(result->generated_ids.size()) &&
                  result->generated_ids[i] == golden[i].item<int64_t>();
    }
    // The smallest top-1 minus top-2 logit gap of the greedy choices: bit-exact token checks of
    // other paths (CUDA graphs' padded GEMMs, batched steps) hold only while it is far above the
    // float32 rounding those paths add (~1e-5 here).
    const float min_margin =
        result->margins.empty() ? 0.0f
                                : *std::min_element(result->margins.begin(), result->margins.end());
    std::printf("[%s %s] %s: %d of %lld greedy tokens identical, smallest top-1 margin %.4g\n",
                GetParam().c_str(), Device().c_str(), key.c_str(), matching,
                static_cast<long long>(golden.numel()), min_margin);
    if (IsFloat32()) {
      EXPECT_EQ(matching, golden.numel()) << key;
      EXPECT_GT(min_margin, 1e-3f) << key << ": a near tie; the bit-exact token checks of the "
                                   << "batched and graph paths would then be unreliable";
    }
  }
}

// Optional real recordings: real_features_NAME / real_mask_NAME with NAME.wav beside them.
TEST_P(GoldenParityTest, RealRecordingFeatures) {
  for (const auto& [key, name] : Matching("real_features_(.+)")) {
    const LogMelFeatures features = model_->log_mel().ExtractPadded(fixture_->Clip(name));
    const at::Tensor ours =
        at::tensor(features.values).view({features.num_mel_bins, features.num_frames});
    const TensorErrors e = Compare(ours, fixture_->Get(key).squeeze(0));
    std::printf("[%s] %s: max |err| %.3g, mean |err| %.3g\n", GetParam().c_str(), key.c_str(),
                e.max_abs, e.mean_abs);
    EXPECT_LE(e.max_abs, 1e-3);
    EXPECT_LE(e.mean_abs, 1e-5);
    if (fixture_->Has("real_mask_" + name)) {
      EXPECT_EQ(features.num_valid_frames,
                fixture_->Get("real_mask_" + name).sum().item<int64_t>());
    }
  }
}

TEST_P(GoldenParityTest, EveryKeyIsUnderstood) {
  const std::regex known(
      "mel_filters|input_features|feature_attention_mask|audio_output_lengths|encoder_hidden_\\d+_"
      "clip_a|"
      "encoder_last_hidden_state|audio_embeds_[a-z]|input_ids_[a-z]|lm_hidden_\\d+_clip_[a-z]|"
      "logits_[a-z]|"
      "greedy_[a-z]|real_features_.+|real_mask_.+");
  for (const std::string& key : fixture_->Keys())
    EXPECT_TRUE(std::regex_match(key, known)) << "unchecked key " << key;
  for (const char* required :
       {"mel_filters", "input_features", "encoder_last_hidden_state", "logits_a", "greedy_a"}) {
    EXPECT_TRUE(fixture_->Has(required)) << "fixture lacks " << required;
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GoldenParityTest, ::testing::Values("float32", "bfloat16"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace speechllm::engine

// Arguments after the gtest flags: [--device=cpu|cuda|cuda:N] [FIXTURE_DIR].
int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--device=", 0) == 0) {
      speechllm::engine::Device() = arg.substr(9);
    } else {
      speechllm::testing::GoldenFixture::SetDirectory(arg);
    }
  }
  return RUN_ALL_TESTS();
}
