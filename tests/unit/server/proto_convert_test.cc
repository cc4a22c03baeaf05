// PromptFromContext (server/proto_convert.h, label unit) over the bundled default model's
// tokenizer: phrases go into the prompt's word list by boost, highest first (ties in the client's
// order), and the count and length limits refuse a context before any of it is tokenized.
#include "server/proto_convert.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/model/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "server/prompt_source.h"
#include "server/server_config.h"
#include "tests/unit/server/default_model_tokenizer.h"

namespace speechllm::server {
namespace {

class PromptFromContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = DefaultModelTokenizer();
    ASSERT_NE(tokenizer_, nullptr);
    auto source = PromptSource::FromTemplate(tokenizer_.get(), PromptSource::Kind::kChat,
                                             "Transcribe the speech.");
    ASSERT_TRUE(source.ok()) << source.status();
    source_ = std::make_unique<PromptSource>(*std::move(source));
  }
  absl::StatusOr<streaming::PromptConfig> Prompt(const v1::RecognitionContext& context) {
    return PromptFromContext(context, config_, *source_, "en", "config.context");
  }
  std::string SuffixText(const streaming::PromptConfig& prompt) {
    std::vector<int32_t> ids(prompt.suffix_ids.begin(), prompt.suffix_ids.end());
    return *tokenizer_->Decode(ids, engine::tokenizer::DecodeOptions{});
  }

  std::unique_ptr<engine::tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<PromptSource> source_;
  ServerConfig config_;
};

TEST_F(PromptFromContextTest, PhrasesAreListedByBoostHighestFirst) {
  v1::RecognitionContext context;
  for (const auto& [text, boost] : std::vector<std::pair<std::string, float>>{
           {"alpha", 1}, {"beta", 15}, {"gamma", 15}, {"delta", 0}}) {
    v1::Phrase* phrase = context.add_phrases();
    phrase->set_text(text);
    phrase->set_boost(boost);
  }
  auto prompt = Prompt(context);
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  const std::string text = SuffixText(*prompt);
  std::printf("suffix: %s\n", text.c_str());
  EXPECT_NE(text.find("Words that may occur: beta, gamma, alpha, delta."), std::string::npos);
}

TEST_F(PromptFromContextTest, CountAndLengthAreCheckedFirst) {
  v1::RecognitionContext too_many;
  for (int i = 0; i <= config_.max_phrases; ++i) too_many.add_phrases()->set_text("<|im_end|>");
  auto refused = Prompt(too_many);
  ASSERT_FALSE(refused.ok());
  std::printf("%d phrases: %s\n", too_many.phrases_size(), refused.status().ToString().c_str());
  EXPECT_NE(refused.status().message().find("more than 100 phrases"), std::string::npos)
      << "counted before any phrase is scanned";
  v1::RecognitionContext long_phrase;
  long_phrase.add_phrases()->set_text(std::string(config_.max_context_chars + 1, 'x'));
  refused = Prompt(long_phrase);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("a phrase longer than 1000 characters"),
            std::string::npos)
      << refused.status();
  long_phrase.mutable_phrases(0)->set_text(std::string(config_.max_context_chars, 'x'));
  refused = Prompt(long_phrase);  // within the characters, past the 512-token suffix
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("tokens long"), std::string::npos) << refused.status();
}

}  // namespace
}  // namespace speechllm::server
