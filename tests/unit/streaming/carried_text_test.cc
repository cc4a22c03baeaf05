// AppendCarriedText (label unit): carried text is joined with one space, cut to its last
// characters (code points), from a word start in spaced scripts, and unspaced scripts keep their
// characters when the next space is far.
#include "streaming/carried_text.h"

#include <string>

#include "gtest/gtest.h"

namespace speechllm::streaming {
namespace {

size_t Characters(const std::string& text) {
  size_t count = 0;
  for (char c : text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return count;
}

TEST(CarriedTextTest, JoinsWithOneSpaceAndStartsAtAWord) {
  EXPECT_EQ(AppendCarriedText("", "hello world", 100), "hello world");
  EXPECT_EQ(AppendCarriedText("hello", "world", 100), "hello world");
  EXPECT_EQ(AppendCarriedText("hello", " world", 100), "hello world");
  // 12 characters cut "the quick brown fox" inside "quick": the rest of it is dropped.
  EXPECT_EQ(AppendCarriedText("", "the quick brown fox", 12), "brown fox");
  EXPECT_EQ(AppendCarriedText("kept", "", 12), "kept");
  // As the transcript joins utterances: no space in unspaced scripts (it put one between them).
  EXPECT_EQ(AppendCarriedText("\xE5\xA5\xBD\xE7\x9A\x84", "\xE8\xB0\xA2", 100),
            "\xE5\xA5\xBD\xE7\x9A\x84\xE8\xB0\xA2");  // 好的 + 谢
}

// 60 CJK characters then " OK", 50 kept: the cut fell inside the unspaced run, and the jump to its
// next space kept only "OK" (2 of 50 characters).
TEST(CarriedTextTest, UnspacedScriptsKeepTheirCharacters) {
  std::string text;
  for (int i = 0; i < 60; ++i) text += "\xE4\xBD\xA0";  // U+4F60
  text += " OK";
  const std::string carried = AppendCarriedText("", text, 50);
  std::printf("60 CJK characters + \" OK\", 50 kept: %zu characters carried\n",
              Characters(carried));
  EXPECT_EQ(Characters(carried), 50u);
  EXPECT_EQ(carried.substr(carried.size() - 3), " OK");
}

}  // namespace
}  // namespace speechllm::streaming
