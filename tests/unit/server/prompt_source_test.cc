// PromptSource::prefix_tokens (server/prompt_source.h): the engine reserves KV for this many prefix
// tokens per stream, so no context may ever change the prefix. Checked for both templates with the
// bundled default model's tokenizer, and for fixed prompt ids.
#include "server/prompt_source.h"

#include "engine/model/tokenizer/tokenizer.h"
#include "gtest/gtest.h"

namespace speechllm::server {
namespace {

TEST(PromptSourceTest, ContextNeverChangesThePrefix) {
  auto tokenizer = engine::tokenizer::Tokenizer::FromDirectory(std::string(SPEECHLLM_SOURCE_DIR) +
                                                               "/models/speechllm-asr-small");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  ContextText context;
  context.prompt = std::string(400, 'x') + " a meeting about the quarterly budget";
  context.phrases = {"Kubernetes", "speechllm", "Qwen two audio"};
  for (const auto kind : {PromptSource::Kind::kChat, PromptSource::Kind::kBase}) {
    auto source = PromptSource::FromTemplate(tokenizer->get(), kind, "Transcribe the speech.");
    ASSERT_TRUE(source.ok()) << source.status();
    auto plain = source->Build({});
    auto with_context = source->Build(context);
    ASSERT_TRUE(plain.ok() && with_context.ok());
    EXPECT_EQ(with_context->prefix_ids, plain->prefix_ids) << static_cast<int>(kind);
    EXPECT_GT(with_context->suffix_ids.size(), plain->suffix_ids.size()) << "context goes after";
    EXPECT_EQ(source->prefix_tokens(), static_cast<int64_t>(plain->prefix_ids.size()));
    EXPECT_GT(source->prefix_tokens(), 0);
    std::printf("template %d: %lld prefix tokens, suffix %zu plain, %zu with context\n",
                static_cast<int>(kind), static_cast<long long>(source->prefix_tokens()),
                plain->suffix_ids.size(), with_context->suffix_ids.size());
  }
  EXPECT_EQ(PromptSource::FromIds({1, 2, 3, 501}, {502, 10}).prefix_tokens(), 4);
}

TEST(PromptSourceTest, CarriedTextGoesIntoTheInstructionAfterTheAudio) {
  auto tokenizer = engine::tokenizer::Tokenizer::FromDirectory(std::string(SPEECHLLM_SOURCE_DIR) +
                                                               "/models/speechllm-asr-small");
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto source = PromptSource::FromTemplate(tokenizer->get(), PromptSource::Kind::kChat,
                                           "Transcribe the speech.");
  ASSERT_TRUE(source.ok()) << source.status();
  ContextText context;
  context.prompt = "a meeting";
  context.previous_text = "my birthday is thursday";
  auto plain = source->Build({});
  auto carried = source->Build(context);
  ASSERT_TRUE(plain.ok() && carried.ok());
  EXPECT_EQ(carried->prefix_ids, plain->prefix_ids);
  std::vector<int32_t> ids(carried->suffix_ids.begin(), carried->suffix_ids.end());
  auto text = (*tokenizer)->Decode(ids, engine::tokenizer::DecodeOptions{});
  ASSERT_TRUE(text.ok()) << text.status();
  std::printf("suffix with carried text: %s\n", text->c_str());
  EXPECT_NE(text->find("Previous text: my birthday is thursday\nContext: a meeting\n"),
            std::string::npos)
      << *text;
  // Raw prompt ids cannot take it.
  ContextText only_previous;
  only_previous.previous_text = "hello";
  EXPECT_EQ(PromptSource::FromIds({1, 501}, {502, 10}).Build(only_previous).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace speechllm::server
