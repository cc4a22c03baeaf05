// IncrementalDetokenizer: deltas never split a UTF-8 character, a 4-byte emoji spread over several
// byte tokens appears once complete, broken bytes become U+FFFD where Decode() puts them, and the
// concatenated deltas equal Decode() for random id sequences.
#include "engine/model/tokenizer/incremental_detokenizer.h"

#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "engine/model/tokenizer/byte_level.h"
#include "engine/model/tokenizer/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/model/tokenizer/tokenizer_test_util.h"

namespace speechllm::engine::tokenizer {
namespace {

using ::testing::ElementsAre;

class IncrementalDetokenizerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tok_ = ::speechllm::testing::LoadMiniTokenizer();
    ASSERT_NE(tok_, nullptr);
  }
  int32_t ByteId(uint8_t b) const {
    return *tok_->TokenToId(BytesToTokenString(std::string(1, static_cast<char>(b))));
  }

  // Deltas of feeding `ids` one at a time, then Finish().
  std::vector<std::string> Deltas(const std::vector<int32_t>& ids,
                                  bool skip_special = false) const {
    DecodeOptions options;
    options.skip_special_tokens = skip_special;
    IncrementalDetokenizer detok(tok_.get(), options);
    std::vector<std::string> deltas;
    for (int32_t id : ids) {
      auto delta = detok.Append(id);
      EXPECT_TRUE(delta.ok()) << delta.status();
      deltas.push_back(delta.value_or(""));
      EXPECT_LE(detok.pending_bytes(), 3u);
      EXPECT_EQ(FirstInvalidUtf8Offset(deltas.back()), deltas.back().size())
          << "delta is not valid UTF-8";
    }
    deltas.push_back(detok.Finish());
    return deltas;
  }
  static std::string Join(const std::vector<std::string>& parts) {
    std::string all;
    for (const auto& p : parts) all += p;
    return all;
  }

  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(IncrementalDetokenizerTest, FourByteEmojiSplitOverByteTokensAppearsWhole) {
  // U+1F600 = F0 9F 98 80, one byte token each.
  const std::vector<int32_t> ids = {ByteId('A'),  ByteId(0xF0), ByteId(0x9F),
                                    ByteId(0x98), ByteId(0x80), ByteId('!')};
  EXPECT_THAT(Deltas(ids), ElementsAre("A", "", "", "", "\xF0\x9F\x98\x80", "!", ""));
  // The tokenizer's own ids for it ("ðŁ" merges F0 9F): same text, fewer steps.
  const std::vector<int32_t> encoded = *tok_->Encode("\xF0\x9F\x98\x80");
  EXPECT_EQ(encoded.size(), 3u);
  EXPECT_THAT(Deltas(encoded), ElementsAre("", "", "\xF0\x9F\x98\x80", ""));
}

TEST_F(IncrementalDetokenizerTest, BrokenBytesBecomeReplacementCharacters) {
  // F0 9F then 'a': the two-byte prefix can never complete, so one U+FFFD, exactly as Decode().
  const std::vector<int32_t> ids = {ByteId(0xF0), ByteId(0x9F), ByteId('a')};
  EXPECT_THAT(Deltas(ids), ElementsAre("", "",
                                       "\xEF\xBF\xBD"
                                       "a",
                                       ""));
  EXPECT_EQ(*tok_->Decode(ids),
            "\xEF\xBF\xBD"
            "a");
  // A stray continuation byte is final at once; an unfinished character at the end is flushed.
  EXPECT_THAT(Deltas({ByteId(0x80), ByteId(0xE4), ByteId(0xB8)}),
              ElementsAre("\xEF\xBF\xBD", "", "", "\xEF\xBF\xBD"));
}

TEST_F(IncrementalDetokenizerTest, SpecialTokensAreKeptOrSkipped) {
  const std::vector<int32_t> ids = *tok_->Encode("<|im_start|>hi<|im_end|>");
  EXPECT_EQ(Join(Deltas(ids)), "<|im_start|>hi<|im_end|>");
  EXPECT_EQ(Join(Deltas(ids, /*skip_special=*/true)), "hi");
}

TEST_F(IncrementalDetokenizerTest, UnknownIdIsAnErrorAndChangesNothing) {
  IncrementalDetokenizer detok(tok_.get());
  ASSERT_TRUE(detok.Append(ByteId(0xF0)).ok());
  auto bad = detok.Append(std::vector<int32_t>{ByteId(0x9F), 151649});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(detok.pending_bytes(), 1u);
  EXPECT_EQ(detok.num_ids(), 1);
}

// The streaming session decodes a partial's tentative text this way (a model's logits can name ids
// past the tokenizer, which Decode drops too): an unknown id is skipped, and a character the
// last tokens only began is held back instead of showing as U+FFFD.
TEST_F(IncrementalDetokenizerTest, UnknownIdsAreSkippedWhenAskedAndIncompleteTextIsHeldBack) {
  DecodeOptions options;
  options.skip_unknown_ids = true;
  IncrementalDetokenizer detok(tok_.get(), options);
  auto text = detok.Append(std::vector<int32_t>{ByteId('A'), 151649, ByteId(0xF0), ByteId(0x9F)});
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "A");
  EXPECT_EQ(detok.pending_bytes(), 2u);
  EXPECT_EQ(detok.num_ids(), 4);
  EXPECT_EQ(*tok_->Decode(std::vector<int32_t>{ByteId('A'), ByteId(0xF0), ByteId(0x9F)}),
            "A\xEF\xBF\xBD");  // what a partial's tentative text ended with before
}

TEST_F(IncrementalDetokenizerTest, ConcatenatedDeltasEqualDecodeForRandomIds) {
  // Random mixes of byte tokens (mostly UTF-8 lead/continuation bytes), merged tokens and specials.
  std::mt19937 rng(11);
  const std::vector<int32_t> pool = {ByteId(0xF0),
                                     ByteId(0x9F),
                                     ByteId(0x98),
                                     ByteId(0x80),
                                     ByteId(0xE4),
                                     ByteId(0xB8),
                                     ByteId(0xAD),
                                     ByteId(0xC3),
                                     ByteId(0xA9),
                                     ByteId(0xED),
                                     ByteId(0xA0),
                                     ByteId('a'),
                                     ByteId(' '),
                                     151644,
                                     151646,
                                     151650,
                                     *tok_->TokenToId("\xC3\xB0\xC5\x81")};
  int sequences = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<int32_t> ids;
    const int n = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < n; ++i) ids.push_back(pool[rng() % pool.size()]);
    for (bool skip : {false, true}) {
      DecodeOptions options;
      options.skip_special_tokens = skip;
      ASSERT_EQ(Join(Deltas(ids, skip)), *tok_->Decode(ids, options)) << "trial " << trial;
      ++sequences;
    }
  }
  std::cout << sequences << " random id sequences: deltas == Decode()\n";
}

}  // namespace
}  // namespace speechllm::engine::tokenizer
