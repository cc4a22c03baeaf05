// speechllm-bench's per-chunk latency (tools/bench/chunk_latency.h): an update that takes several
// chunks gives each of them its own latency from its own arrival; a final takes the rest of its
// segment; another sequence's chunks and later segments' are left alone.
#include "tools/bench/chunk_latency.h"

#include "gtest/gtest.h"

namespace speechllm::bench {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1000);

absl::Time At(int ms) { return kT0 + absl::Milliseconds(ms); }

std::vector<double> Ms(const std::vector<ChunkLatency::Reflected>& reflected) {
  std::vector<double> ms;
  for (const ChunkLatency::Reflected& r : reflected) {
    ms.push_back(absl::ToDoubleMilliseconds(r.latency));
  }
  return ms;
}

TEST(ChunkLatencyTest, AMergedUpdateTimesEveryChunkItTakesFromItsOwnArrival) {
  ChunkLatency tracker;
  // Chunks of 1 s arriving every second; the engine is behind and answers at 3.5 s with an
  // update of the first three seconds: 2.5 s, 1.5 s and 0.5 s late (its own latency: 0.5 s).
  for (int c = 1; c <= 4; ++c) tracker.Sent(7, 0, c * 1.0, At(c * 1000));
  tracker.Sent(9, 0, 1.0, At(1000));  // another stream
  EXPECT_EQ(Ms(tracker.Update(7, 0, 3.0, false, At(3500))), (std::vector<double>{2500, 1500, 500}));
  EXPECT_TRUE(tracker.Update(7, 0, 3.0, false, At(3600)).empty()) << "counted once";
  // The final reflects the rest of the segment, whatever its audio end says.
  tracker.Sent(7, 1, 1.0, At(5000));  // the next utterance's first chunk
  EXPECT_EQ(Ms(tracker.Update(7, 0, 0.0, true, At(4200))), (std::vector<double>{200}));
  EXPECT_EQ(Ms(tracker.Update(7, 1, 1.0, false, At(5100))), (std::vector<double>{100}));
  EXPECT_EQ(Ms(tracker.Update(9, 0, 1.0, false, At(1300))), (std::vector<double>{300}));
  EXPECT_TRUE(tracker.Update(42, 0, 1.0, true, At(1300)).empty()) << "an unknown sequence";
}

}  // namespace
}  // namespace speechllm::bench
