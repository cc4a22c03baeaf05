// Word error rate (tools/wer): normalization and the Levenshtein counts of each error kind.
#include "tools/wer/wer.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace speechllm::tools {
namespace {

using ::testing::ElementsAre;

TEST(NormalizeWordsTest, LowerCasesAndDropsPunctuation) {
  EXPECT_THAT(NormalizeWords("Hello, World!  It's A B-C."),
              ElementsAre("hello", "world", "it's", "a", "b", "c"));
}

TEST(NormalizeWordsTest, KeepsNumbersWhole) {
  EXPECT_THAT(NormalizeWords("at 7:30, pay 3.5 or 1,000."),
              ElementsAre("at", "7:30", "pay", "3.5", "or", "1000"));
  EXPECT_THAT(NormalizeWords("time: 7"), ElementsAre("time", "7"));
}

TEST(NormalizeWordsTest, FoldsUnicodeCaseAndPunctuation) {
  // Case beyond ASCII, typographic quotes and dashes, an inverted question mark, a curly
  // apostrophe inside a word, fullwidth letters and digits, a ligature, German sharp s.
  EXPECT_THAT(NormalizeWords("\u00c9T\u00c9 \u2014 \u201cJ\u2019AI\u201d \u00bfQU\u00c9?"),
              ElementsAre("\u00e9t\u00e9", "j'ai", "qu\u00e9"));
  EXPECT_THAT(NormalizeWords("\uff28\uff49 \uff17\uff1a\uff13\uff10 \ufb01le STRA\u00dfE"),
              ElementsAre("hi", "7:30", "file", "strasse"));
  // Precomposed and decomposed forms are the same word.
  EXPECT_EQ(NormalizeWords("caf\u00e9"), NormalizeWords("cafe\u0301"));
  // Cyrillic and Greek letters are letters; ill-formed bytes separate words.
  EXPECT_THAT(
      NormalizeWords("\u041f\u0440\u0438\u0432\u0435\u0442, \u039a\u03cc\u03c3\u03bc\u03b5"),
      ElementsAre("\u043f\u0440\u0438\u0432\u0435\u0442", "\u03ba\u03cc\u03c3\u03bc\u03b5"));
  EXPECT_THAT(NormalizeWords("ab\xff\xfe"
                             "cd"),
              ElementsAre("ab", "cd"));
}

TEST(NormalizeWordsTest, UnspacedScriptsCountEveryCharacter) {
  // Chinese and Japanese: one word a character, their punctuation dropped; Latin words between
  // them stay whole. Thai vowel signs stay with their letter; Korean is written in words.
  EXPECT_THAT(NormalizeWords("\u4f60\u597d\uff0cWorld\u3002\u3042\u308a"),
              ElementsAre("\u4f60", "\u597d", "world", "\u3042", "\u308a"));
  EXPECT_THAT(NormalizeWords("\u0e01\u0e34\u0e19"), ElementsAre("\u0e01\u0e34", "\u0e19"));
  EXPECT_THAT(NormalizeWords("\ud559\uad50\uc5d0 \uac11\ub2c8\ub2e4"),
              ElementsAre("\ud559\uad50\uc5d0", "\uac11\ub2c8\ub2e4"));
  // A substituted character is one error in a sentence of four.
  EXPECT_DOUBLE_EQ(AlignWords(NormalizeWords("\u6211\u7231\u5317\u4eac"),
                              NormalizeWords("\u6211\u7231\u5357\u4eac"))
                       .rate_percent(),
                   25.0);
}

TEST(NormalizeWordsTest, EmptyAndSpacesOnly) {
  EXPECT_TRUE(NormalizeWords("").empty());
  EXPECT_TRUE(NormalizeWords(" \t ... ").empty());
}

TEST(AlignWordsTest, CountsEachErrorKind) {
  const auto ref = NormalizeWords("turn on the kitchen lights");
  WordErrors exact = AlignWords(ref, ref);
  EXPECT_EQ(exact.errors(), 0);
  EXPECT_EQ(exact.reference_words, 5);

  WordErrors errors = AlignWords(ref, NormalizeWords("turn the kitchen light please"));
  EXPECT_EQ(errors.deletions, 1);      // on
  EXPECT_EQ(errors.substitutions, 1);  // lights -> light
  EXPECT_EQ(errors.insertions, 1);     // please
  EXPECT_DOUBLE_EQ(errors.rate_percent(), 60.0);
}

TEST(AlignWordsTest, EmptySides) {
  EXPECT_EQ(AlignWords({}, {}).rate_percent(), 0.0);
  EXPECT_EQ(AlignWords({}, {"x"}).rate_percent(), 100.0);
  const WordErrors all_deleted = AlignWords({"a", "b"}, {});
  EXPECT_EQ(all_deleted.deletions, 2);
  EXPECT_DOUBLE_EQ(all_deleted.rate_percent(), 100.0);
}

TEST(AlignWordsTest, AccumulatesOverUtterances) {
  WordErrors total;
  total += AlignWords({"a", "b"}, {"a", "c"});
  total += AlignWords({"d", "e", "f"}, {"d", "e", "f"});
  EXPECT_EQ(total.reference_words, 5);
  EXPECT_DOUBLE_EQ(total.rate_percent(), 20.0);
}

}  // namespace
}  // namespace speechllm::tools
