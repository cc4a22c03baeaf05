// PromptBuilder on the mini tokenizer: the chat template text (MODEL.md 5.2), audio placeholder
// expansion and the reported audio positions (5.4), the base-model ASR prompt (5.3), errors.
#include "engine/model/tokenizer/prompt_builder.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/model/tokenizer/tokenizer_test_util.h"

namespace speechllm::engine::tokenizer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class PromptBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tok_ = ::speechllm::testing::LoadMiniTokenizer();
    ASSERT_NE(tok_, nullptr);
    auto builder = PromptBuilder::Create(tok_.get());
    ASSERT_TRUE(builder.ok()) << builder.status();
    builder_.emplace(*std::move(builder));
  }
  std::vector<int32_t> Encode(const std::string& text) const { return *tok_->Encode(text); }

  std::unique_ptr<Tokenizer> tok_;
  std::optional<PromptBuilder> builder_;
};

// The HF test conversation: one user turn with an audio and "What's that sound?".
std::vector<ChatMessage> HfTestConversation(int64_t audio_tokens) {
  return {ChatMessage{"user",
                      {ContentItem::Audio(audio_tokens), ContentItem::Text("What's that sound?")}}};
}

TEST_F(PromptBuilderTest, SpecialIdsComeFromTheAddedTokenTable) {
  const Qwen2AudioSpecialTokens& s = builder_->special_tokens();
  EXPECT_EQ(s.endoftext, 151643);
  EXPECT_EQ(s.im_start, 151644);
  EXPECT_EQ(s.im_end, 151645);
  EXPECT_EQ(s.audio, 151646);
  EXPECT_EQ(s.audio_bos, 151647);
  EXPECT_EQ(s.audio_eos, 151648);
}

TEST_F(PromptBuilderTest, RendersTheChatTemplate) {
  EXPECT_EQ(builder_->RenderChat(HfTestConversation(101), /*add_generation_prompt=*/true),
            "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
            "<|im_start|>user\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nWhat's that "
            "sound?<|im_end|>\n"
            "<|im_start|>assistant\n");
  // Own system prompt, two audios numbered across turns, an assistant turn, no generation prompt.
  const std::vector<ChatMessage> chat = {
      {"system", {ContentItem::Text("Be brief.")}},
      {"user", {ContentItem::Audio(3), ContentItem::Text("And this?"), ContentItem::Audio(4)}},
      {"assistant", {ContentItem::Text("Birds.")}},
      {"user", {ContentItem::Audio(5)}}};
  EXPECT_EQ(builder_->RenderChat(chat, false),
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nAnd this?"
            "Audio 2: <|audio_bos|><|AUDIO|><|audio_eos|>\n<|im_end|>\n"
            "<|im_start|>assistant\nBirds.<|im_end|>\n"
            "<|im_start|>user\nAudio 3: <|audio_bos|><|AUDIO|><|audio_eos|>\n<|im_end|>\n");
}

TEST_F(PromptBuilderTest, ExpandsAudioAndReportsItsPositions) {
  auto prompt = builder_->BuildChat(HfTestConversation(101), true);
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  const std::string before =
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nAudio 1: "
      "<|audio_bos|>";
  const std::string after = "<|audio_eos|>\nWhat's that sound?<|im_end|>\n<|im_start|>assistant\n";
  std::vector<int32_t> expected = Encode(before);
  expected.insert(expected.end(), 101, 151646);
  for (int32_t id : Encode(after)) expected.push_back(id);
  EXPECT_EQ(prompt->ids, expected);
  ASSERT_EQ(prompt->audio_spans.size(), 1u);
  EXPECT_EQ(prompt->audio_spans[0].first_position, static_cast<int64_t>(Encode(before).size()));
  EXPECT_EQ(prompt->audio_spans[0].num_tokens, 101);
  EXPECT_EQ(prompt->ids[prompt->audio_spans[0].first_position - 1], 151647);
  EXPECT_EQ(prompt->ids[prompt->audio_spans[0].first_position + 101], 151648);
}

TEST_F(PromptBuilderTest, TwoAudiosGetTwoSpans) {
  const std::vector<ChatMessage> chat = {{"user", {ContentItem::Audio(7), ContentItem::Audio(2)}}};
  auto prompt = builder_->BuildChat(chat, true);
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  ASSERT_EQ(prompt->audio_spans.size(), 2u);
  int64_t audio_ids = 0;
  for (int32_t id : prompt->ids) audio_ids += id == 151646;
  EXPECT_EQ(audio_ids, 9);
  for (const AudioSpan& span : prompt->audio_spans) {
    for (int64_t i = 0; i < span.num_tokens; ++i)
      EXPECT_EQ(prompt->ids[span.first_position + i], 151646);
  }
  EXPECT_EQ(prompt->audio_spans[0].num_tokens, 7);
  EXPECT_EQ(prompt->audio_spans[1].num_tokens, 2);
  EXPECT_GT(prompt->audio_spans[1].first_position, prompt->audio_spans[0].first_position + 7);
}

TEST_F(PromptBuilderTest, BaseModelAsrPrompt) {
  EXPECT_EQ(PromptBuilder::AsrInstruction("en"),
            "Detect the language and recognize the speech: <|en|>");
  auto prompt = builder_->BuildBase(5, PromptBuilder::AsrInstruction("en"));
  ASSERT_TRUE(prompt.ok()) << prompt.status();
  std::vector<int32_t> expected = {151647, 151646, 151646, 151646, 151646, 151646, 151648};
  for (int32_t id : Encode("Detect the language and recognize the speech: <|en|>"))
    expected.push_back(id);
  EXPECT_EQ(prompt->ids, expected);
  ASSERT_EQ(prompt->audio_spans.size(), 1u);
  EXPECT_EQ(prompt->audio_spans[0].first_position, 1);
  EXPECT_EQ(prompt->audio_spans[0].num_tokens, 5);
}

TEST_F(PromptBuilderTest, AudioRequestSplitsTheTemplateAtTheClip) {
  const Qwen2AudioSpecialTokens& special = builder_->special_tokens();
  for (const PromptTemplate kind : {PromptTemplate::kChat, PromptTemplate::kBase}) {
    auto request = builder_->BuildAudioRequest(kind, "What's that sound?");
    ASSERT_TRUE(request.ok()) << request.status();
    auto whole = kind == PromptTemplate::kChat
                     ? builder_->BuildChat(HfTestConversation(1), /*add_generation_prompt=*/true)
                     : builder_->BuildBase(1, "What's that sound?");
    ASSERT_TRUE(whole.ok()) << whole.status();
    std::vector<int64_t> joined = request->prefix_ids;
    joined.push_back(special.audio);
    joined.insert(joined.end(), request->suffix_ids.begin(), request->suffix_ids.end());
    EXPECT_EQ(joined, std::vector<int64_t>(whole->ids.begin(), whole->ids.end()));
    ASSERT_FALSE(request->prefix_ids.empty());
    EXPECT_EQ(request->prefix_ids.back(), special.audio_bos);
    EXPECT_EQ(request->suffix_ids.front(), special.audio_eos);
  }
  EXPECT_FALSE(builder_->BuildAudioRequest(PromptTemplate::kChat, "<|AUDIO|>").ok());
}

TEST_F(PromptBuilderTest, BarePlaceholderIsWrappedInBosAndEos) {
  auto bare = builder_->BuildFromText("x<|AUDIO|>y", std::vector<int64_t>{2});
  ASSERT_TRUE(bare.ok()) << bare.status();
  const int32_t x = *tok_->TokenToId("x"), y = *tok_->TokenToId("y");
  EXPECT_THAT(bare->ids, ElementsAre(x, 151647, 151646, 151646, 151648, y));
  EXPECT_EQ(bare->audio_spans[0].first_position, 2);
  // Either neighbour present: no wrapping (HF Qwen2AudioProcessor's rule).
  auto half = builder_->BuildFromText("<|audio_bos|><|AUDIO|>y", std::vector<int64_t>{1});
  ASSERT_TRUE(half.ok());
  EXPECT_THAT(half->ids, ElementsAre(151647, 151646, y));
}

TEST_F(PromptBuilderTest, Errors) {
  auto mismatch = builder_->BuildFromText("<|AUDIO|><|AUDIO|>", std::vector<int64_t>{3});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_THAT(mismatch.status().message(), HasSubstr("2 <|AUDIO|> placeholders for 1 audio clips"));
  // A literal <|AUDIO|> in user text counts as a placeholder, as in HF.
  const std::vector<ChatMessage> sneaky = {
      {"user", {ContentItem::Text("say <|AUDIO|>"), ContentItem::Audio(2)}}};
  EXPECT_FALSE(builder_->BuildChat(sneaky, true).ok());
  EXPECT_FALSE(builder_->BuildBase(0, "x").ok());
  // A count no model has: refused before any id is written (2^62 asked for that many).
  auto huge = builder_->BuildFromText("<|AUDIO|>", std::vector<int64_t>{int64_t{1} << 62});
  ASSERT_FALSE(huge.ok());
  EXPECT_THAT(huge.status().message(), HasSubstr("1 to 65536 are allowed"));
  EXPECT_TRUE(builder_->BuildFromText("<|AUDIO|>", std::vector<int64_t>{65536}).ok());
}

TEST(PromptBuilderCreateTest, MissingSpecialTokenIsAClearError) {
  auto spec = ReadTokenizerJson(::speechllm::testing::TokenizerDataDir() +
                                "/qwen2_audio_mini/tokenizer.json");
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto& added = spec->added_tokens;
  added.erase(std::remove_if(added.begin(), added.end(),
                             [](const AddedToken& t) { return t.content == "<|audio_eos|>"; }),
              added.end());
  auto tok = Tokenizer::FromSpec(*spec);
  ASSERT_TRUE(tok.ok()) << tok.status();
  auto builder = PromptBuilder::Create(tok->get());
  ASSERT_FALSE(builder.ok());
  EXPECT_EQ(builder.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(builder.status().message(), HasSubstr("<|audio_eos|>"));
  EXPECT_THAT(builder.status().message(), HasSubstr("tokenizer.json"));
}

}  // namespace
}  // namespace speechllm::engine::tokenizer
