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
