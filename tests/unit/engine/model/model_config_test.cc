#include "engine/model/model_config.h"

#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace speechllm::engine {
namespace {

using ::testing::HasSubstr;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string ConfigsDir() { return speechllm::testing::GoldenDir() + "/../configs"; }

TEST(ModelConfigTest, ReadsTransformers5StyleFixture) {
  auto config = ModelConfig::FromDirectory(speechllm::testing::GoldenDir() + "/model");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->audio.d_model, 64);
  EXPECT_EQ(config->audio.num_layers, 2);
  EXPECT_EQ(config->audio.num_heads, 4);
  EXPECT_EQ(config->audio.head_dim(), 16);
  EXPECT_EQ(config->audio.ffn_dim, 256);
  EXPECT_EQ(config->text.hidden_size, 64);
  EXPECT_EQ(config->text.num_heads, 4);
  EXPECT_EQ(config->text.num_kv_heads, 2);
  EXPECT_EQ(config->text.head_dim, 16);
  EXPECT_EQ(config->text.intermediate_size, 160);
  EXPECT_EQ(config->text.vocab_size, 512);
  EXPECT_DOUBLE_EQ(config->text.rms_norm_eps, 1e-6);
  EXPECT_DOUBLE_EQ(config->text.rope_theta, 10000.0);
  EXPECT_EQ(config->audio_token_id, 500);
  EXPECT_EQ(config->audio_bos_token_id, 501);
  EXPECT_EQ(config->audio_eos_token_id, 502);
  EXPECT_TRUE(config->stop_token_ids.empty());  // eos null in the fixture
  EXPECT_EQ(config->dtype, "float32");
  EXPECT_THAT(config->ToString(), HasSubstr("num_kv_heads=2"));
}

TEST(ModelConfigTest, Published7BStyleTakesLibraryDefaults) {
  auto config = ModelConfig::FromJson(ReadText(ConfigsDir() + "/qwen2_audio_7b_style.json"));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->audio.d_model, 1280);
  EXPECT_EQ(config->audio.num_layers, 32);
  EXPECT_EQ(config->audio.num_heads, 20);
  EXPECT_EQ(config->audio.ffn_dim, 5120);
  EXPECT_EQ(config->text.hidden_size, 4096);
  EXPECT_EQ(config->text.num_layers, 32);
  EXPECT_EQ(config->text.num_heads, 32);
  EXPECT_EQ(config->text.num_kv_heads, 32);
  EXPECT_EQ(config->text.head_dim, 128);
  EXPECT_EQ(config->text.intermediate_size, 11008);
  EXPECT_EQ(config->text.vocab_size, 156032);
  EXPECT_DOUBLE_EQ(config->text.rms_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(config->text.rope_theta, 10000.0);
  EXPECT_EQ(config->text.max_position_embeddings, 8192);
  EXPECT_FALSE(config->text.tie_word_embeddings);
  EXPECT_EQ(config->audio_token_id, 151646);
  EXPECT_EQ(config->audio_bos_token_id, 151647);
  EXPECT_EQ(config->audio_eos_token_id, 151648);
  // text_config names <|im_end|>; MODEL.md 5.5's service stop set adds <|endoftext|>.
  EXPECT_EQ(config->stop_token_ids, (std::vector<int64_t>{151643, 151645}));
  EXPECT_EQ(config->dtype, "bfloat16");
}

TEST(ModelConfigTest, RopeParametersWinOverLegacyRopeTheta) {
  auto config = ModelConfig::FromJson(
      R"({"text_config": {"rope_theta": 5, "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"}}})");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_DOUBLE_EQ(config->text.rope_theta, 1e6);
  EXPECT_EQ(ModelConfig::FromJson("{}")->text.rope_theta, 10000.0);
}

TEST(ModelConfigTest, RejectsBadValuesWithFieldNames) {
  struct Case {
    const char* json;
    const char* message;
  };
  for (
      const Case& c : {
          Case{"not json", "not valid JSON"},
          Case{R"({"model_type": "whisper"})", "model_type"},
          Case{R"({"text_config": {"hidden_size": "big"}})", "text_config.hidden_size"},
          Case{
              R"({"text_config": {"num_attention_heads": 5, "num_key_value_heads": 2, "hidden_size": 640}})",
              "num_key_value_heads"},
          Case{R"({"text_config": {"hidden_act": "gelu"}})", "hidden_act"},
          Case{R"({"text_config": {"use_sliding_window": true}})", "sliding_window"},
          Case{R"({"text_config": {"rope_scaling": {"type": "yarn"}}})", "rope_scaling"},
          Case{R"({"audio_config": {"activation_function": "gelu_new"}})", "activation_function"},
          Case{R"({"audio_config": {"max_source_positions": 750}})", "max_source_positions"},
          Case{R"({"dtype": "int8"})", "dtype"},
          Case{R"({"audio_token_index": 200000})", "outside the vocabulary"},
          // Converted silently before (2.9 -> 2, 2^32 + 2 -> 2): a model of another size.
          Case{R"({"text_config": {"num_hidden_layers": 2.9}})",
               "text_config.num_hidden_layers is not an integer in range: 2.9"},
          Case{R"({"text_config": {"num_hidden_layers": 4294967298}})",
               "num_hidden_layers is not an integer in range"},
          Case{R"({"audio_config": {"d_model": -4294967296}})", "d_model is not an integer"},
          // Token ids were truncated (151645.9) or accepted outside the vocabulary.
          Case{R"({"text_config": {"eos_token_id": 151645.9}})", "eos_token_id is not a token id"},
          Case{R"({"text_config": {"eos_token_id": [-5, 151645]}})", "stop token id -5"},
          Case{R"({"text_config": {"eos_token_id": 99999999999}})", "stop token id 99999999999"},
          Case{R"({"audio_token_index": 9223372036854775807})", "audio_token_index"},
          // Tables built from these before any weight is read asked for gigabytes (and aborted).
          Case{R"({"text_config": {"max_position_embeddings": 2147483647}})",
               "max_position_embeddings 2147483647 is above 262144"},
          Case{R"({"text_config": {"head_dim": 1073741824}})", "head_dim 1073741824 is above"},
          Case{R"({"audio_config": {"num_mel_bins": 2000000000}})",
               "num_mel_bins 2000000000 is above 1024"},
      }) {
    auto config = ModelConfig::FromJson(c.json);
    ASSERT_FALSE(config.ok()) << c.json;
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << c.json;
    EXPECT_THAT(config.status().message(), HasSubstr(c.message)) << c.json;
  }
}

// The FFT's butterflies hold one radix in a fixed array: an n_fft whose half has a prime factor
// above 31 (74 = 2 x 37) overflowed it; a window longer than the clip read before its start.
TEST(ModelConfigTest, RejectsFeatureSizesTheFrontEndCannotRun) {
  ModelConfig config;
  ASSERT_TRUE(config.Validate().ok()) << config.Validate();
  for (const int n_fft : {74, 200006, 1 << 30, 3}) {
    config.features.n_fft = n_fft;
    const absl::Status status = config.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << n_fft;
    EXPECT_THAT(status.message(), HasSubstr("n_fft")) << n_fft;
  }
  config.features.n_fft = 2002;  // 7 x 11 x 13: supported
  EXPECT_TRUE(config.Validate().ok()) << config.Validate();

  ModelConfig short_window;
  short_window.features.hop_length = 1;
  short_window.features.max_samples = 3000;
  short_window.features.n_fft = 8192;
  short_window.audio.max_source_positions = 1500;
  const absl::Status status = short_window.Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("n_fft 8192 is longer than n_samples 3000"));
}

TEST(ModelConfigTest, MissingDirectoryIsNotFound) {
  EXPECT_EQ(ModelConfig::FromDirectory("/nonexistent/model").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ModelConfigTest, PresetsMatchTheDocumentedShapes) {
  auto tiny = ModelConfig::Preset("tiny");
  ASSERT_TRUE(tiny.ok());
  auto fixture = ModelConfig::FromDirectory(speechllm::testing::GoldenDir() + "/model");
  ASSERT_TRUE(fixture.ok());
  EXPECT_EQ(tiny->ToString(), fixture->ToString());
  auto big = ModelConfig::Preset("7b");
  ASSERT_TRUE(big.ok());
  EXPECT_EQ(big->text.hidden_size, 4096);
  EXPECT_EQ(big->text.vocab_size, 156032);
  EXPECT_EQ(ModelConfig::Preset("13b").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace speechllm::engine
