// Tokenizer on the hand-written Qwen2-Audio mini tokenizer: BPE ids, NFC, added tokens matched
// whole and never split (the six Qwen2-Audio specials at 151643..151648), decode with and without
// special tokens, the slow file trio giving the same ids, lookups, `<|...|>` tags dropped for
// display.
#include "engine/model/tokenizer/tokenizer.h"

#include <malloc.h>

#include <cstdio>
#include <string>
#include <vector>

#include "engine/model/tokenizer/incremental_detokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/model/tokenizer/tokenizer_test_util.h"

namespace speechllm::engine::tokenizer {
namespace {

using ::speechllm::testing::LoadMiniTokenizer;
using ::speechllm::testing::TokenizerDataDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tok_ = LoadMiniTokenizer();
    ASSERT_NE(tok_, nullptr);
  }
  int32_t Id(const std::string& token) const {
    const auto id = tok_->TokenToId(token);
    EXPECT_TRUE(id.has_value()) << token;
    return id.value_or(-1);
  }
  std::vector<int32_t> Encode(const std::string& text) const {
    auto ids = tok_->Encode(text);
    EXPECT_TRUE(ids.ok()) << ids.status();
    return ids.ok() ? *ids : std::vector<int32_t>{};
  }
  std::string Decode(const std::vector<int32_t>& ids, bool skip_special = false) const {
    DecodeOptions options;
    options.skip_special_tokens = skip_special;
    auto text = tok_->Decode(ids, options);
    EXPECT_TRUE(text.ok()) << text.status();
    return text.ok() ? *text : "";
  }
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(TokenizerTest, LoadsTheMiniTokenizer) {
  EXPECT_EQ(tok_->num_base_tokens(), 277u);
  EXPECT_EQ(tok_->num_merges(), 21u);
  EXPECT_EQ(tok_->added_tokens().size(), 7u);
  EXPECT_EQ(tok_->id_limit(), 151651);
  EXPECT_FALSE(tok_->IsKnown(151649));  // ids need not be contiguous
}

TEST_F(TokenizerTest, QwenAudioAddedTokensHaveTheirIds) {
  EXPECT_EQ(*tok_->AddedTokenId("<|endoftext|>"), 151643);
  EXPECT_EQ(*tok_->AddedTokenId("<|im_start|>"), 151644);
  EXPECT_EQ(*tok_->AddedTokenId("<|im_end|>"), 151645);
  EXPECT_EQ(*tok_->AddedTokenId("<|AUDIO|>"), 151646);
  EXPECT_EQ(*tok_->AddedTokenId("<|audio_bos|>"), 151647);
  EXPECT_EQ(*tok_->AddedTokenId("<|audio_eos|>"), 151648);
  for (int32_t id = 151643; id <= 151648; ++id) {
    EXPECT_TRUE(tok_->IsSpecial(id)) << id;
    EXPECT_THAT(Encode(*tok_->IdToToken(id)), ElementsAre(id));
  }
  EXPECT_TRUE(tok_->IsAdded(151650));
  EXPECT_FALSE(tok_->IsSpecial(151650));  // "[NOTE]" is added but not special
  EXPECT_FALSE(tok_->IsSpecial(Id("a")));
  auto missing = tok_->AddedTokenId("<|en|>");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr("<|en|>"));
  EXPECT_FALSE(tok_->AddedTokenId("a").ok());  // a vocabulary token is not an added token
}

TEST_F(TokenizerTest, BytesAndMerges) {
  EXPECT_THAT(Encode("a"), ElementsAre(Id("a")));
  EXPECT_THAT(Encode(" the sound"), ElementsAre(Id("\xC4\xA0the"), Id("\xC4\xA0sound")));
  EXPECT_THAT(Encode("What's"), ElementsAre(Id("W"), Id("ha"), Id("t"), Id("'s")));
  EXPECT_THAT(Encode(" What's"), ElementsAre(Id("\xC4\xA0What"), Id("'s")));
  EXPECT_THAT(Encode("aaaaa"), ElementsAre(Id("aaaa"), Id("a")));
  EXPECT_THAT(Encode("\n\n\n"), ElementsAre(Id("\xC4\x8A\xC4\x8A"), Id("\xC4\x8A")));
  EXPECT_THAT(Encode("12"), ElementsAre(Id("1"), Id("2")));
  EXPECT_THAT(Encode(""), ElementsAre());
}

TEST_F(TokenizerTest, AddedTokensAreMatchedWholeAndNeverSplit) {
  const int32_t im_start = 151644, im_end = 151645, audio = 151646, bos = 151647, eos = 151648;
  EXPECT_THAT(Encode("<|im_start|>user\n"),
              ElementsAre(im_start, Id("u"), Id("s"), Id("e"), Id("r"), Id("\xC4\x8A")));
  EXPECT_THAT(Encode("<|AUDIO|><|AUDIO|>"), ElementsAre(audio, audio));
  EXPECT_THAT(Encode("x<|audio_bos|><|AUDIO|><|audio_eos|>y"),
              ElementsAre(Id("x"), bos, audio, eos, Id("y")));
  EXPECT_THAT(Encode("<<|im_end|>>"), ElementsAre(Id("<"), im_end, Id(">")));
  // The space before a special token is a token of its own, not merged into it.
  EXPECT_THAT(Encode("a <|im_end|>"), ElementsAre(Id("a"), Id("\xC4\xA0"), im_end));
  // Almost-tokens are ordinary text.
  for (const char* near :
       {"<|im_start|", "<|IM_START|>", "< |im_end|>", "<|audio|>", "|im_end|>"}) {
    const std::vector<int32_t> ids = Encode(near);
    EXPECT_GT(ids.size(), 3u) << near;
    for (int32_t id : ids) EXPECT_FALSE(tok_->IsAdded(id)) << near;
    EXPECT_EQ(Decode(ids), near);
  }
  EXPECT_THAT(Encode("[NOTE]"), ElementsAre(151650));
}

TEST_F(TokenizerTest, NfcBeforeBpe) {
  // "é" precomposed (U+00E9) and decomposed (e + U+0301) give the same ids.
  EXPECT_EQ(Encode("caf\xC3\xA9"), Encode("cafe\xCC\x81"));
  // Angstrom sign U+212B normalises to Å U+00C5.
  EXPECT_EQ(Encode("\xE2\x84\xAB"), Encode("\xC3\x85"));
  // Added tokens are matched on the raw text; NFC applies to the text around them.
  EXPECT_EQ(Encode("e\xCC\x81<|im_end|>e\xCC\x81"), Encode("\xC3\xA9<|im_end|>\xC3\xA9"));
}

TEST_F(TokenizerTest, DecodeRoundTripAndSkipSpecial) {
  const std::string text =
      "<|im_start|>user\nWhat's the sound? \xF0\x9F\x98\x80 [NOTE]<|im_end|>\n";
  const std::vector<int32_t> ids = Encode(text);
  EXPECT_EQ(Decode(ids), text);
  EXPECT_EQ(Decode(ids, /*skip_special=*/true),
            "user\nWhat's the sound? \xF0\x9F\x98\x80 [NOTE]\n");
  // Half of a character decodes to U+FFFD, like HF's errors="replace".
  const std::vector<int32_t> emoji = Encode("\xF0\x9F\x98\x80");
  ASSERT_GE(emoji.size(), 2u);
  EXPECT_EQ(Decode({emoji[0]}), "\xEF\xBF\xBD");
}

TEST_F(TokenizerTest, Errors) {
  auto bad_input = tok_->Encode("ok \xC3");
  ASSERT_FALSE(bad_input.ok());
  EXPECT_THAT(bad_input.status().message(), HasSubstr("not valid UTF-8 at byte 3"));
  auto bad_id = tok_->Decode(std::vector<int32_t>{1, 151649});
  ASSERT_FALSE(bad_id.ok());
  EXPECT_EQ(bad_id.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(bad_id.status().message(), HasSubstr("151649"));
  EXPECT_FALSE(tok_->Decode(std::vector<int32_t>{-1}).ok());
  // As HF's decode (and for text shown to users): ids without a token are dropped.
  DecodeOptions skip;
  skip.skip_unknown_ids = true;
  auto skipped = tok_->Decode(std::vector<int32_t>{1, 151649, -1, 1}, skip);
  ASSERT_TRUE(skipped.ok()) << skipped.status();
  EXPECT_EQ(*skipped, Decode({1, 1}));
  EXPECT_FALSE(tok_->TokenBytes(999999).has_value());
}

TEST_F(TokenizerTest, SlowFilesGiveTheSameTokenizer) {
  const std::string dir = TokenizerDataDir() + "/qwen2_audio_mini_slow";
  auto slow = Tokenizer::FromDirectory(dir);
  ASSERT_TRUE(slow.ok()) << slow.status();
  EXPECT_EQ((*slow)->num_base_tokens(), tok_->num_base_tokens());
  EXPECT_EQ((*slow)->num_merges(), tok_->num_merges());
  EXPECT_EQ((*slow)->added_tokens().size(), tok_->added_tokens().size());
  for (const std::string text :
       {"What's the sound? <|AUDIO|> aaaaa\n\n", "<|im_start|>system\nx<|im_end|>"}) {
    EXPECT_EQ(*(*slow)->Encode(text), Encode(text)) << text;
  }
  EXPECT_TRUE((*slow)->IsSpecial(151646));
  auto fast = Tokenizer::FromDirectory(TokenizerDataDir() + "/qwen2_audio_mini");
  ASSERT_TRUE(fast.ok()) << fast.status();
}

// The per-thread scratch of a huge input is freed when its encode returns (scratch.h): a 1 MB
// encode used to leave about 11 MiB held by the thread. glibc's count of the bytes in use (all
// arenas' and mmapped blocks) before and after; sanitizer builds allocate elsewhere, where
// mallinfo2 cannot see, and skip.
TEST_F(TokenizerTest, AHugeInputLeavesNoScratchBehind) {
  const auto bytes_in_use = [] {
    const struct mallinfo2 info = mallinfo2();
    return static_cast<double>(info.uordblks + info.hblkhd);
  };
  {
    const double before = bytes_in_use();
    const std::vector<char> probe(size_t{1} << 20, 'x');
    if (bytes_in_use() - before < 512 * 1024) {
      GTEST_SKIP() << "mallinfo2 does not see this build's allocations (a sanitizer's allocator)";
    }
  }
  Encode("warm up: hello a");
  std::string words, word(300000, 'a');
  for (int i = 0; i < 170000; ++i) words += "hello ";
  for (const std::string* text : {&words, &word}) {
    const double before = bytes_in_use();
    const size_t num_ids = Encode(*text).size();
    const double held_kib = (bytes_in_use() - before) / 1024;
    std::printf("%zu bytes, %zu ids: %.0f KiB more held after the encode\n", text->size(), num_ids,
                held_kib);
    EXPECT_GT(num_ids, 0u);
    EXPECT_LT(held_kib, 512);
  }
}

TEST(TokenizerSpecTest, LstripAndRstripSwallowWhitespace) {
  auto spec = ReadTokenizerJson(::speechllm::testing::TokenizerDataDir() +
                                "/qwen2_audio_mini/tokenizer.json");
  ASSERT_TRUE(spec.ok()) << spec.status();
  spec->added_tokens.push_back(AddedToken{160000, "<L>", true, /*lstrip=*/true, false});
  spec->added_tokens.push_back(AddedToken{160001, "<R>", true, false, /*rstrip=*/true});
  auto tok = Tokenizer::FromSpec(*spec);
  ASSERT_TRUE(tok.ok()) << tok.status();
  const int32_t a = *(*tok)->TokenToId("a");
  const int32_t b = *(*tok)->TokenToId("b");
  EXPECT_THAT(*(*tok)->Encode("a  \t<L>b"), ElementsAre(a, 160000, b));
  EXPECT_THAT(*(*tok)->Encode("a<R> \n b"), ElementsAre(a, 160001, b));
  EXPECT_THAT(*(*tok)->Encode("<L><R>"), ElementsAre(160000, 160001));
}

// MODEL.md 5.1: tags like <|en|> may be added tokens that are not special; text shown to users
// drops every added `<|...|>` token (Qwen's ASR eval removes them with `<\|.*?\|>`), and nothing
// else: "[NOTE]" and text that merely looks like a tag stay.
TEST(TokenizerSpecTest, TagTokensAreDroppedWhenAsked) {
  auto spec = ReadTokenizerJson(::speechllm::testing::TokenizerDataDir() +
                                "/qwen2_audio_mini/tokenizer.json");
  ASSERT_TRUE(spec.ok()) << spec.status();
  spec->added_tokens.push_back(AddedToken{160000, "<|en|>", /*special=*/false, false, false});
  spec->added_tokens.push_back(AddedToken{160001, "<|a|b|>", /*special=*/false, false, false});
  auto tok = Tokenizer::FromSpec(*spec);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_TRUE((*tok)->IsTag(160000));
  EXPECT_FALSE((*tok)->IsTag(160001));  // `|` inside: not one tag
  EXPECT_TRUE((*tok)->IsTag(151645));   // <|im_end|>
  EXPECT_FALSE((*tok)->IsTag(151650));  // [NOTE]
  const std::string text = "<|en|>What's the sound? [NOTE]<|a|b|><|im_end|>";
  const std::vector<int32_t> ids = *(*tok)->Encode(text);
  DecodeOptions shown;
  shown.skip_special_tokens = true;
  EXPECT_EQ(*(*tok)->Decode(ids, shown), "<|en|>What's the sound? [NOTE]<|a|b|>");
  shown.skip_tag_tokens = true;
  EXPECT_EQ(*(*tok)->Decode(ids, shown), "What's the sound? [NOTE]<|a|b|>");
  IncrementalDetokenizer detokenizer(tok->get(), shown);
  std::string streamed;
  for (const int32_t id : ids) streamed += *detokenizer.Append(id);
  streamed += detokenizer.Finish();
  EXPECT_EQ(streamed, "What's the sound? [NOTE]<|a|b|>");
}

}  // namespace
}  // namespace speechllm::engine::tokenizer
