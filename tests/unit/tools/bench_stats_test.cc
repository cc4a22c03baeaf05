// The benchmarks' JSON writer and latency percentiles, whole-run and steady-window
// (tools/bench/bench_stats.h): the GPU run's table reads these lines, and one unescaped error
// message would make the whole line unreadable.
#include "tools/bench/bench_stats.h"

#include "gtest/gtest.h"

namespace speechllm::bench {
namespace {

TEST(JsonWriterTest, NumbersAndEscapedStrings) {
  JsonWriter json;
  json.Add("ms", 12.5);
  json.Add("count", int64_t{3});
  json.Add("error", std::string("CUDA error: \"out of memory\"\n\tat C:\\path\x01"));
  EXPECT_EQ(json.ToString(),
            "{\"ms\": 12.5, \"count\": 3, "
            "\"error\": \"CUDA error: \\\"out of memory\\\"\\u000a\\u0009at C:\\\\path\\u0001\"}");
}

TEST(LatencyRecorderTest, NearestRankPercentiles) {
  LatencyRecorder latencies;
  EXPECT_EQ(latencies.PercentileMs(0.95), 0);
  for (int ms = 10; ms >= 1; --ms) latencies.Add(absl::Milliseconds(ms));
  EXPECT_EQ(latencies.count(), 10u);
  EXPECT_DOUBLE_EQ(latencies.PercentileMs(0.5), 5);
  EXPECT_DOUBLE_EQ(latencies.PercentileMs(0.95), 10);
  EXPECT_DOUBLE_EQ(latencies.PercentileMs(0.0), 1);
}

TEST(WindowedLatencyTest, SteadySamplesAreThoseWhoseInputArrivedInTheWindow) {
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  WindowedLatency latency;
  latency.Add(absl::Milliseconds(1), t0);  // no window yet: all only
  latency.begin = t0 + absl::Seconds(8);
  latency.end = t0 + absl::Seconds(20);
  latency.Add(absl::Milliseconds(50), t0 + absl::Seconds(7));    // ramp-up
  latency.Add(absl::Milliseconds(300), t0 + absl::Seconds(8));   // first instant of the window
  latency.Add(absl::Milliseconds(200), t0 + absl::Seconds(19));  // inside
  latency.Add(absl::Milliseconds(90), t0 + absl::Seconds(20));   // the end is outside
  EXPECT_EQ(latency.all.count(), 5u);
  EXPECT_EQ(latency.steady.count(), 2u);
  EXPECT_DOUBLE_EQ(latency.steady.PercentileMs(0.5), 200);
  EXPECT_DOUBLE_EQ(latency.steady.PercentileMs(0.95), 300);
}

}  // namespace
}  // namespace speechllm::bench
