// The GPT-2 byte-level alphabet (both directions) and the UTF-8 helpers behind decode's U+FFFD
// rule.
#include "engine/model/tokenizer/byte_level.h"

#include <set>
#include <string>

#include "engine/model/tokenizer/utf8.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace speechllm::engine::tokenizer {
namespace {

constexpr char kFffd[] = "\xEF\xBF\xBD";

TEST(ByteLevelTest, MapIsABijectionOntoU0021ToU0143) {
  std::set<char32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const char32_t cp = ByteToCodePoint(static_cast<uint8_t>(b));
    EXPECT_TRUE(seen.insert(cp).second) << "byte " << b;
    EXPECT_GE(cp, 0x21u);
    EXPECT_LT(cp, 0x144u);
    ASSERT_TRUE(CodePointToByte(cp).has_value());
    EXPECT_EQ(*CodePointToByte(cp), b);
  }
  EXPECT_EQ(seen.size(), 256u);
}

TEST(ByteLevelTest, PrintableBytesStandForThemselvesOthersAreShifted) {
  EXPECT_EQ(ByteToCodePoint('!'), U'!');
  EXPECT_EQ(ByteToCodePoint('a'), U'a');
  EXPECT_EQ(ByteToCodePoint('~'), U'~');
  EXPECT_EQ(ByteToCodePoint(0xE9), U'\u00E9');  // printable Latin-1 keeps its code point
  EXPECT_EQ(ByteToCodePoint(0x00), U'\u0100');
  EXPECT_EQ(ByteToCodePoint(' '), U'\u0120');   // "Ġ"
  EXPECT_EQ(ByteToCodePoint('\n'), U'\u010A');  // "Ċ"
  EXPECT_EQ(ByteToCodePoint(0x7F), U'\u0121');
  EXPECT_EQ(ByteToCodePoint(0xAD), U'\u0143');  // soft hyphen is the last shifted byte
  EXPECT_EQ(ByteListingIndex('!'), 0);
  EXPECT_EQ(ByteListingIndex(0x00), 188);  // 94 + 12 + 82 printable bytes come first
  EXPECT_EQ(ByteListingIndex(0xAD), 255);
}

TEST(ByteLevelTest, TokenStringsRoundTripEveryByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string token = BytesToTokenString(all);
  const auto back = TokenStringToBytes(token);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, all);
  EXPECT_EQ(BytesToTokenString(" the"), "\xC4\xA0the");  // "Ġthe"
}

TEST(ByteLevelTest, CharactersOutsideTheAlphabetAreRejected) {
  char32_t bad = 0;
  EXPECT_FALSE(TokenStringToBytes("ab\xC5\x84", &bad).has_value());  // U+0144, one past the end
  EXPECT_EQ(bad, U'\u0144');
  EXPECT_FALSE(TokenStringToBytes("\xE4\xB8\xAD", &bad).has_value());  // 中
  EXPECT_EQ(bad, U'\u4E2D');
  EXPECT_FALSE(TokenStringToBytes(" ", &bad).has_value());     // a raw space is not in the alphabet
  EXPECT_FALSE(TokenStringToBytes("\xC4", &bad).has_value());  // broken UTF-8
  EXPECT_EQ(bad, U'\uFFFD');
}

std::string Lossy(const std::string& bytes, bool final, size_t* consumed = nullptr) {
  std::string out;
  const size_t n = AppendUtf8Lossy(bytes, final, &out);
  if (consumed != nullptr) *consumed = n;
  return out;
}

TEST(Utf8Test, LossyDecodingReplacesMaximalSubparts) {
  EXPECT_EQ(Lossy("plain \xC3\xA9", true), "plain \xC3\xA9");
  EXPECT_EQ(Lossy("\xE2\x82", true), kFffd);  // truncated 3-byte: one U+FFFD
  EXPECT_EQ(Lossy("\xE2\x82"
                  "A",
                  true),
            std::string(kFffd) + "A");
  EXPECT_EQ(Lossy("\xE0\x80", true), std::string(kFffd) + kFffd);              // overlong lead: two
  EXPECT_EQ(Lossy("\xED\xA0\x80", true), std::string(kFffd) + kFffd + kFffd);  // surrogate
  EXPECT_EQ(Lossy("\xF4\x90\x80\x80", true), std::string(kFffd) + kFffd + kFffd + kFffd);
  EXPECT_EQ(Lossy("\xC0\xAF", true), std::string(kFffd) + kFffd);
  EXPECT_EQ(Lossy("\xF5", true), kFffd);
  EXPECT_EQ(Lossy("\xF0\x9F\x98\x80", true), "\xF0\x9F\x98\x80");
}

TEST(Utf8Test, NonFinalDecodingHoldsBackOnlyCompletablePrefixes) {
  size_t consumed = 0;
  EXPECT_EQ(Lossy("a\xF0\x9F\x98", false, &consumed), "a");
  EXPECT_EQ(consumed, 1u);
  EXPECT_EQ(Lossy("\xF0\x9F\x98", false, &consumed), "");
  EXPECT_EQ(consumed, 0u);
  // A byte that can never start or continue a character is final at once.
  EXPECT_EQ(Lossy("a\x80", false, &consumed), std::string("a") + kFffd);
  EXPECT_EQ(consumed, 2u);
  EXPECT_EQ(Lossy("\xE0\x80", false, &consumed), std::string(kFffd) + kFffd);
  EXPECT_EQ(consumed, 2u);
}

TEST(Utf8Test, ValidationAndDecoding) {
  EXPECT_EQ(FirstInvalidUtf8Offset("ok \xE4\xB8\xAD"), 6u);
  EXPECT_EQ(FirstInvalidUtf8Offset("ok \xE4\xB8"), 3u);
  EXPECT_EQ(FirstInvalidUtf8Offset("\xED\xBF\xBF"), 0u);
  char32_t cp = 0;
  EXPECT_EQ(DecodeUtf8At("\xF0\x9F\x98\x80", 0, &cp), 4u);
  EXPECT_EQ(cp, U'\U0001F600');
  std::string encoded;
  for (char32_t c : {U'A', U'\u00E9', U'\u4E2D', U'\U0001F600'}) AppendUtf8(c, &encoded);
  EXPECT_EQ(encoded, "A\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80");
}

}  // namespace
}  // namespace speechllm::engine::tokenizer
