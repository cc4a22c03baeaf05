// The Qwen2 split regex on PCRE2: contractions, digits, spaces before punctuation and words, the
// \s+(?!\S) rule, newlines, scripts without spaces, and the lack of \p{M} (pre-NFC input).
#include "engine/model/tokenizer/pre_tokenizer.h"

#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace speechllm::engine::tokenizer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::vector<std::string> SplitQwen2(const std::string& text) {
  static const auto* pre = PreTokenizer::Create(kQwen2SplitPattern)->release();
  std::vector<absl::string_view> pieces;
  const absl::Status status = pre->Split(text, &pieces);
  EXPECT_TRUE(status.ok()) << status;
  return std::vector<std::string>(pieces.begin(), pieces.end());
}

TEST(PreTokenizerTest, CompilesWithJit) {
  auto pre = PreTokenizer::Create(kQwen2SplitPattern);
  ASSERT_TRUE(pre.ok()) << pre.status();
  std::cout << "PCRE2 JIT " << ((*pre)->jit_enabled() ? "on" : "off (interpreter)") << "\n";
}

TEST(PreTokenizerTest, WordsTakeOneLeadingSpace) {
  EXPECT_THAT(SplitQwen2("Hello world"), ElementsAre("Hello", " world"));
  EXPECT_THAT(SplitQwen2("$hello \"quoted\""), ElementsAre("$hello", " \"", "quoted", "\""));
  EXPECT_THAT(SplitQwen2("a\tb"), ElementsAre("a", "\tb"));  // any non-letter/digit/newline prefix
}

TEST(PreTokenizerTest, ContractionsAreCaseInsensitive) {
  EXPECT_THAT(SplitQwen2("it's"), ElementsAre("it", "'s"));
  EXPECT_THAT(SplitQwen2("IT'S"), ElementsAre("IT", "'S"));
  EXPECT_THAT(
      SplitQwen2("they're We'Ll I'VE I'm he'd don't"),
      ElementsAre("they", "'re", " We", "'Ll", " I", "'VE", " I", "'m", " he", "'d", " don", "'t"));
  // Not a contraction: "'x" keeps the apostrophe as a word prefix.
  EXPECT_THAT(SplitQwen2("'xyz"), ElementsAre("'xyz"));
}

TEST(PreTokenizerTest, DigitsOneByOne) {
  EXPECT_THAT(SplitQwen2("12345"), ElementsAre("1", "2", "3", "4", "5"));
  EXPECT_THAT(SplitQwen2("abc123 4.5"), ElementsAre("abc", "1", "2", "3", " ", "4", ".", "5"));
  EXPECT_THAT(SplitQwen2("\xD9\xA3\xD9\xA4"), ElementsAre("\xD9\xA3", "\xD9\xA4"));  // Arabic-Indic
}

TEST(PreTokenizerTest, PunctuationTakesOneLeadingSpaceAndTrailingNewlines) {
  EXPECT_THAT(SplitQwen2("Hello , world"), ElementsAre("Hello", " ,", " world"));
  EXPECT_THAT(SplitQwen2("wait ...!?"), ElementsAre("wait", " ...!?"));
  EXPECT_THAT(SplitQwen2("Hi!\n\nThere"), ElementsAre("Hi", "!\n\n", "There"));
  EXPECT_THAT(SplitQwen2("x  (y)"), ElementsAre("x", " ", " (", "y", ")"));
}

TEST(PreTokenizerTest, SpacesBeforeAWordLeaveOneSpaceForTheWord) {
  EXPECT_THAT(SplitQwen2("a   b"), ElementsAre("a", "  ", " b"));  // \s+(?!\S) backs off one space
  EXPECT_THAT(SplitQwen2("end   "), ElementsAre("end", "   "));    // at the end all of them
  EXPECT_THAT(SplitQwen2("a \t b"), ElementsAre("a", " \t", " b"));
}

TEST(PreTokenizerTest, Newlines) {
  EXPECT_THAT(SplitQwen2("line1\n\nline2"), ElementsAre("line", "1", "\n\n", "line", "2"));
  EXPECT_THAT(SplitQwen2("a\r\nb"), ElementsAre("a", "\r\n", "b"));
  EXPECT_THAT(SplitQwen2("a \n b"), ElementsAre("a", " \n", " b"));
  EXPECT_THAT(SplitQwen2("\n\n  x"), ElementsAre("\n\n", " ", " x"));
}

TEST(PreTokenizerTest, UnicodeLettersAndMarks) {
  // 你好，世界: letters run together; the fullwidth comma, like any one non-letter, prefixes the
  // next word. 你好。 ends with punctuation on its own.
  EXPECT_THAT(SplitQwen2("\xE4\xBD\xA0\xE5\xA5\xBD\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C"),
              ElementsAre("\xE4\xBD\xA0\xE5\xA5\xBD", "\xEF\xBC\x8C\xE4\xB8\x96\xE7\x95\x8C"));
  EXPECT_THAT(SplitQwen2("\xE4\xBD\xA0\xE5\xA5\xBD\xE3\x80\x82"),
              ElementsAre("\xE4\xBD\xA0\xE5\xA5\xBD", "\xE3\x80\x82"));
  // No \p{M} in Qwen2's pattern: a combining acute (U+0301) is split off a decomposed "é"; NFC,
  // which runs before the split, normally composes it first.
  EXPECT_THAT(SplitQwen2("cafe\xCC\x81"), ElementsAre("cafe", "\xCC\x81"));
  // U+3000 ideographic space is \s.
  EXPECT_THAT(SplitQwen2("a\xE3\x80\x80"
                         "b"),
              ElementsAre("a",
                          "\xE3\x80\x80"
                          "b"));
}

TEST(PreTokenizerTest, PiecesCoverTheInputExactly) {
  const std::string text = "Mixed: it's 2024!\n\tcode();  \xF0\x9F\x98\x80 <|im_end|>   ";
  std::string joined;
  for (const std::string& piece : SplitQwen2(text)) {
    EXPECT_FALSE(piece.empty());
    joined += piece;
  }
  EXPECT_EQ(joined, text);
}

TEST(PreTokenizerTest, VeryLongLetterRunIsOnePiece) {
  // 1 MiB of one letter: needs more than PCRE2's default JIT stack, or the interpreter fallback.
  const std::string text(1 << 20, 'a');
  const auto start = std::chrono::steady_clock::now();
  const std::vector<std::string> pieces = SplitQwen2(text);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0].size(), text.size());
  std::cout << "1 MiB letter run split in " << ms << " ms\n";
}

// A pattern whose JIT stack runs out falls back to the interpreter, which must not run JIT again.
TEST(PreTokenizerTest, AJitStackOverflowFallsBackToTheInterpreter) {
  auto pre = PreTokenizer::Create("(?:a|bc)+");
  ASSERT_TRUE(pre.ok()) << pre.status();
  const std::string text(1 << 20, 'a');
  std::vector<absl::string_view> pieces;
  const absl::Status status = (*pre)->Split(text, &pieces);
  std::cout << "(?:a|bc)+ on 1 MiB: " << status << ", " << pieces.size() << " piece(s)\n";
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(pieces.size(), 1u);
  EXPECT_EQ(pieces[0].size(), text.size());
}

// \s is Unicode's White_Space as in Oniguruma (HF tokenizers) and Python's regex: U+180E, which
// PCRE2 counts as space, is not (so "!" takes it as punctuation would, like the reference).
TEST(PreTokenizerTest, WhiteSpaceIsUnicodesNotPcre2s) {
  EXPECT_THAT(SplitQwen2("2!\u180e"), ElementsAre("2", "!\u180e"));
  EXPECT_THAT(SplitQwen2(".\u180eZ"), ElementsAre(".\u180e", "Z"));
  // Real White_Space characters still split as spaces.
  EXPECT_THAT(SplitQwen2("a\u3000\u3000b"), ElementsAre("a", "\u3000", "\u3000b"));
  EXPECT_THAT(SplitQwen2("x\u2028"), ElementsAre("x", "\u2028"));
  EXPECT_EQ(WithUnicodeWhiteSpace(R"(a\s[^\s\]x]\S\\s[]\s])"),
            R"(a[\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F})"
            R"(\x{3000}][^\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F})"
            R"(\x{205F}\x{3000}\]x][^\t-\r \x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028})"
            R"(\x{2029}\x{202F}\x{205F}\x{3000}]\\s[]\t-\r \x{85}\x{A0}\x{1680}\x{2000}-)"
            R"(\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}])");
}

TEST(PreTokenizerTest, BadPatternIsAnError) {
  auto pre = PreTokenizer::Create("(unclosed");
  ASSERT_FALSE(pre.ok());
  EXPECT_THAT(pre.status().message(), HasSubstr("does not compile"));
}

}  // namespace
}  // namespace speechllm::engine::tokenizer
