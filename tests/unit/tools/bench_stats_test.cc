// The benchmarks' JSON writer and latency percentiles (tools/bench/bench_stats.h): the GPU run's
// table reads these lines, and one unescaped error message would make the whole line unreadable.
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

}  // namespace
}  // namespace speechllm::bench
