#include "engine/repetition_guard.h"

#include <vector>

#include "gtest/gtest.h"

namespace speechllm::engine {
namespace {

RepetitionGuardConfig Guard(int min_loop_tokens, int min_copies = 3, int max_unit_tokens = 32) {
  RepetitionGuardConfig config;
  config.min_loop_tokens = min_loop_tokens;
  config.min_copies = min_copies;
  config.max_unit_tokens = max_unit_tokens;
  return config;
}

std::vector<int64_t> Repeat(std::vector<int64_t> head, const std::vector<int64_t>& unit,
                            int copies) {
  for (int i = 0; i < copies; ++i) head.insert(head.end(), unit.begin(), unit.end());
  return head;
}

TEST(RepetitionGuardTest, OffFindsNothing) {
  EXPECT_FALSE(FindLoopCut(std::vector<int64_t>(100, 7), Guard(0)).has_value());
  EXPECT_FALSE(FindLoopCut({}, Guard(8)).has_value());
}

TEST(RepetitionGuardTest, OneTokenLoopKeepsItsFirstCopy) {
  // The tiny fixture model's greedy output for clip_b: 355, then 227 for ever.
  const std::vector<int64_t> tokens = Repeat({355}, {227}, 8);
  EXPECT_EQ(FindLoopCut(tokens, Guard(8)), 2);
  // One copy short of the span: no loop yet.
  EXPECT_FALSE(FindLoopCut(Repeat({355}, {227}, 7), Guard(8)).has_value());
}

TEST(RepetitionGuardTest, PhraseLoopNeedsCopiesAndSpan) {
  const std::vector<int64_t> phrase = {10, 11, 12, 13};
  // Three copies of four tokens span 12.
  EXPECT_EQ(FindLoopCut(Repeat({1, 2}, phrase, 3), Guard(12)), 6);
  EXPECT_FALSE(FindLoopCut(Repeat({1, 2}, phrase, 3), Guard(13)).has_value());
  // Two copies never make a loop with min_copies 3, however long.
  EXPECT_FALSE(FindLoopCut(Repeat({1, 2}, Repeat({}, {5, 6, 7, 8, 9, 10, 11, 12}, 1), 2), Guard(4))
                   .has_value());
  // A unit longer than max_unit_tokens is not looked for.
  EXPECT_FALSE(FindLoopCut(Repeat({}, phrase, 5), Guard(8, 3, 3)).has_value());
  EXPECT_EQ(FindLoopCut(Repeat({}, phrase, 5), Guard(8, 3, 4)), 4);
}

TEST(RepetitionGuardTest, PartialLastCopyIsCutToo) {
  std::vector<int64_t> tokens = Repeat({1}, {10, 11, 12}, 4);
  tokens.push_back(10);  // the start of a fifth copy
  EXPECT_EQ(FindLoopCut(tokens, Guard(9)), 4);
}

TEST(RepetitionGuardTest, ShortestUnitWins) {
  // "a b a b a b a b": a loop of "a b" (4 copies), not of "a b a b" (2 copies).
  const std::vector<int64_t> tokens = Repeat({9}, {3, 4}, 4);
  EXPECT_EQ(FindLoopCut(tokens, Guard(8)), 3);
}

TEST(RepetitionGuardTest, SpeechLikeRepeatsAreKeptAtTheServerDefault) {
  // "no no no", "very very very", a short phrase said twice: under 32 tokens of loop.
  const RepetitionGuardConfig server_default = Guard(32);
  EXPECT_FALSE(FindLoopCut(Repeat({1, 2}, {40}, 3), server_default).has_value());
  EXPECT_FALSE(FindLoopCut(Repeat({1, 2}, {40, 41}, 5), server_default).has_value());
  EXPECT_FALSE(FindLoopCut(Repeat({}, {20, 21, 22, 23, 24, 25}, 2), server_default).has_value());
  // An 11-token sentence three times does loop at 33 tokens.
  std::vector<int64_t> sentence;
  for (int64_t t = 100; t < 111; ++t) sentence.push_back(t);
  EXPECT_EQ(FindLoopCut(Repeat({1}, sentence, 3), server_default), 12);
}

TEST(RepetitionGuardTest, ValidateNamesTheField) {
  EXPECT_TRUE(Guard(32).Validate().ok());
  EXPECT_TRUE(Guard(0).Validate().ok());
  EXPECT_NE(Guard(-1).Validate().message().find("min_loop_tokens"), std::string::npos);
  EXPECT_NE(Guard(8, 1).Validate().message().find("min_copies"), std::string::npos);
  EXPECT_NE(Guard(8, 3, 0).Validate().message().find("max_unit_tokens"), std::string::npos);
}

}  // namespace
}  // namespace speechllm::engine
