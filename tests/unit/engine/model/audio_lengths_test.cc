#include "engine/model/audio_lengths.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace speechllm::engine {
namespace {

using ::testing::HasSubstr;

TEST(AudioLengthsTest, FloorDivisionFollowsPython) {
  EXPECT_EQ(FloorDiv(-1, 2), -1);
  EXPECT_EQ(FloorDiv(-2, 2), -1);
  EXPECT_EQ(FloorDiv(-3, 2), -2);
  EXPECT_EQ(FloorDiv(3, 2), 1);
  EXPECT_EQ(FloorDiv(0, 2), 0);
}

TEST(AudioLengthsTest, WorkedValuesFromModelDoc) {
  const FeatureConfig features;
  struct Case {
    int64_t samples, frames, conv, tokens;
  };
  for (const Case& c : {Case{320, 2, 1, 0}, Case{321, 3, 2, 1}, Case{16000, 100, 50, 25},
                        Case{160000, 1000, 500, 250}, Case{480000, 3000, 1500, 750},
                        Case{53920, 337, 169, 84}, Case{126560, 791, 396, 198}}) {
    SCOPED_TRACE(c.samples);
    EXPECT_EQ(NumValidFrames(c.samples, features), c.frames);
    EXPECT_EQ(ConvOutputLength(c.frames), c.conv);
    EXPECT_EQ(AudioTokenCount(c.frames), c.tokens);
  }
  // C++ truncation would give 1 token for one conv position; Python floor division gives 0.
  EXPECT_EQ(AudioTokenCount(1), 0);
  EXPECT_EQ(AudioTokenCount(0), 0);
}

TEST(AudioLengthsTest, LongAudioIsTruncatedTo30Seconds) {
  const FeatureConfig features;
  EXPECT_EQ(NumValidFrames(480001, features), 3000);
  EXPECT_EQ(*AudioTokensForSamples(10 * 480000, features), 750);
}

TEST(AudioLengthsTest, TooShortAudioIsAClearError) {
  const FeatureConfig features;
  auto tokens = AudioTokensForSamples(320, features);
  ASSERT_FALSE(tokens.ok());
  EXPECT_EQ(tokens.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tokens.status().message(), HasSubstr("too short"));
  EXPECT_FALSE(AudioTokensForSamples(0, features).ok());
  EXPECT_EQ(*AudioTokensForSamples(321, features), 1);
}

}  // namespace
}  // namespace speechllm::engine
