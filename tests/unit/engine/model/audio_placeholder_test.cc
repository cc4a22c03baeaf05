// ExpandAudioPlaceholder (label unit), MODEL.md 5.4: one <|AUDIO|> becomes N audio ids; a
// placeholder with neither <|audio_bos|> before nor <|audio_eos|> after gets both, as HF's
// processor adds them (a bare one used to give a prompt two ids short, and other tokens); one
// neighbour alone stays as it is; an expanded run of exactly N is kept; anything else is refused.
#include "engine/model/audio_placeholder.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace speechllm::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kAudio = 500, kBos = 501, kEos = 502;

absl::StatusOr<std::vector<int64_t>> Expand(const std::vector<int64_t>& ids, int64_t n) {
  return ExpandAudioPlaceholder(ids, kAudio, kBos, kEos, n);
}

TEST(AudioPlaceholderTest, ABarePlaceholderIsWrappedAsHfDoes) {
  EXPECT_THAT(*Expand({1, 2, kAudio, 10}, 3),
              ElementsAre(1, 2, kBos, kAudio, kAudio, kAudio, kEos, 10));
  EXPECT_THAT(*Expand({kAudio}, 2), ElementsAre(kBos, kAudio, kAudio, kEos));
}

TEST(AudioPlaceholderTest, AWrappedOrHalfWrappedPlaceholderKeepsItsNeighbours) {
  EXPECT_THAT(*Expand({1, kBos, kAudio, kEos, 10}, 2),
              ElementsAre(1, kBos, kAudio, kAudio, kEos, 10));
  EXPECT_THAT(*Expand({kBos, kAudio, 10}, 2), ElementsAre(kBos, kAudio, kAudio, 10));
  EXPECT_THAT(*Expand({1, kAudio, kEos}, 2), ElementsAre(1, kAudio, kAudio, kEos));
  EXPECT_THAT(*Expand({1, kAudio, kAudio, 10}, 2), ElementsAre(1, kAudio, kAudio, 10));  // expanded
}

TEST(AudioPlaceholderTest, OtherShapesAreRefused) {
  EXPECT_THAT(Expand({1, 2}, 2).status().message(), HasSubstr("no audio token"));
  EXPECT_THAT(Expand({kAudio, 1, kAudio}, 2).status().message(), HasSubstr("2 separate"));
  EXPECT_THAT(Expand({kAudio, kAudio, kAudio}, 2).status().message(), HasSubstr("3 audio tokens"));
}

}  // namespace
}  // namespace speechllm::engine
