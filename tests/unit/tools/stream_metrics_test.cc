// speechllm-loadtest's measurements (tools/loadtest/stream_metrics.h) on hand-made response
// records: lag and end-to-end latency per update, finals' processing, warnings, failed calls, and
// the verdict against the target of API.md section 5.
#include "tools/loadtest/stream_metrics.h"

#include "gtest/gtest.h"

namespace speechllm::loadtest {
namespace {

namespace v1 = speechllm::v1;
using client::Clock;

google::protobuf::Duration Proto(absl::Duration d) {
  google::protobuf::Duration out;
  out.set_seconds(absl::ToInt64Seconds(d));
  out.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d - absl::Seconds(out.seconds()))));
  return out;
}

const Clock::time_point kT0{};

Clock::time_point At(int ms) { return kT0 + std::chrono::milliseconds(ms); }

client::ResponseRecord Update(int arrival_ms, int received_ms, int processed_ms, bool is_final,
                              int processing_ms = -1, int queue_wait_ms = -1) {
  client::ResponseRecord record;
  record.arrival_time = At(arrival_ms);
  *record.response.mutable_audio_received() = Proto(absl::Milliseconds(received_ms));
  *record.response.mutable_audio_processed() = Proto(absl::Milliseconds(processed_ms));
  v1::TranscriptUpdate* update = record.response.mutable_transcript();
  update->set_is_final(is_final);
  if (processing_ms >= 0) {
    *update->mutable_timing()->mutable_processing() = Proto(absl::Milliseconds(processing_ms));
  }
  if (queue_wait_ms >= 0) {
    *update->mutable_timing()->mutable_queue_wait() = Proto(absl::Milliseconds(queue_wait_ms));
  }
  return record;
}

// Chunks of 100 ms handed to gRPC at 1000 + 100 k ms (audio [100 k, 100 k + 100) ms).
std::vector<client::SentChunk> Chunks(int count) {
  std::vector<client::SentChunk> chunks;
  for (int k = 0; k < count; ++k) {
    chunks.push_back({3200, absl::Milliseconds(100 * (k + 1)), At(1000 + 100 * k)});
  }
  return chunks;
}

TEST(StreamMetricsTest, LagAndEndToEndLatencyOfEachUpdate) {
  std::vector<client::ResponseRecord> responses;
  client::ResponseRecord started;
  started.response.mutable_started()->set_session_id("s");
  responses.push_back(started);  // no transcript: no sample
  // Audio up to 1000 ms reflected; the chunk ending at 1000 ms was sent at 1900 ms.
  responses.push_back(Update(1950, 1200, 1000, false, -1, 12));
  // Up to 1500 ms (its chunk sent at 2400 ms), final, processing 30 ms of which 7 in the queue.
  responses.push_back(Update(2480, 1500, 1500, true, 30, 7));
  client::ResponseRecord warning;
  warning.response.mutable_warning()->set_code(v1::Warning::BACKLOG);
  responses.push_back(warning);
  client::ResponseRecord summary;
  summary.response.mutable_summary()->set_compute_rtf(0.25f);
  responses.push_back(summary);

  const StreamSamples s = MeasureStream(responses, Chunks(20), grpc::Status::OK);
  EXPECT_EQ(s.lag_ms, (std::vector<double>{200, 0}));
  EXPECT_EQ(s.partial_end_to_end_ms, (std::vector<double>{50}));
  EXPECT_EQ(s.final_end_to_end_ms, (std::vector<double>{80}));
  EXPECT_EQ(s.final_processing_ms, (std::vector<double>{30}));
  EXPECT_EQ(s.partial_queue_wait_ms, (std::vector<double>{12}));
  EXPECT_EQ(s.final_queue_wait_ms, (std::vector<double>{7}));
  EXPECT_EQ(s.finals, 1);
  EXPECT_EQ(s.warnings.at("BACKLOG"), 1);
  EXPECT_FLOAT_EQ(s.compute_rtf, 0.25f);
  EXPECT_EQ(s.status, grpc::StatusCode::OK);
}

TEST(StreamMetricsTest, ClientLagCountsAudioTheServerHasNotRead) {
  // The server read 1.2 s and processed 1 s, but the microphone had captured 5 s by then: the
  // rest waited in the client while the server's reads were paused.
  client::ResponseRecord held = Update(5000, 1200, 1000, false);
  held.audio_captured = absl::Seconds(5);
  client::ResponseRecord caught_up = Update(6000, 6000, 5900, true);
  caught_up.audio_captured = absl::Seconds(6);
  const StreamSamples s = MeasureStream({held, caught_up}, Chunks(60), grpc::Status::OK);
  EXPECT_EQ(s.lag_ms, (std::vector<double>{200, 100}));
  EXPECT_EQ(s.client_lag_ms, (std::vector<double>{4000, 100}));

  // The server's lag meets the target; the client's does not.
  const LoadReport report = Summarize({s}, LoadTarget{});
  EXPECT_DOUBLE_EQ(report.lag_ms_p99, 200);
  EXPECT_DOUBLE_EQ(report.client_lag_ms_p50, 100);
  EXPECT_DOUBLE_EQ(report.client_lag_ms_p99, 4000);
  EXPECT_EQ(report.verdict, "missed: client lag p99");
  EXPECT_NE(ToJson(report).find("\"client_lag_ms_p99\": 4000.0"), std::string::npos)
      << ToJson(report);
}

TEST(StreamMetricsTest, UpdatesWithoutAMatchingChunkHaveNoEndToEndSample) {
  // Nothing processed yet, and audio past the last chunk sent (a chunk the client never recorded).
  const std::vector<client::ResponseRecord> responses = {Update(1500, 300, 0, false),
                                                         Update(3000, 2500, 2500, false)};
  const StreamSamples s = MeasureStream(responses, Chunks(20), grpc::Status::OK);
  EXPECT_EQ(s.lag_ms.size(), 2u);
  EXPECT_TRUE(s.partial_end_to_end_ms.empty());
}

TEST(StreamMetricsTest, SummaryPercentilesFailuresAndVerdict) {
  StreamSamples fast, slow, failed;
  fast.lag_ms = {100, 100, 100, 100};
  slow.lag_ms = {100, 100, 100, 2500};  // one update 2.5 s behind
  fast.final_processing_ms = {20};
  slow.final_processing_ms = {40};
  fast.final_queue_wait_ms = {1};
  slow.final_queue_wait_ms = {25};
  slow.partial_queue_wait_ms = {3, 9};
  fast.finals = slow.finals = 1;
  failed.status = grpc::StatusCode::RESOURCE_EXHAUSTED;
  LoadTarget target;

  LoadReport report = Summarize({fast, fast}, target);
  EXPECT_TRUE(report.target_met) << report.verdict;
  EXPECT_EQ(report.verdict, "met (lag and errors only: no final processing target)");
  EXPECT_EQ(report.updates, 8);
  EXPECT_EQ(report.finals, 2);

  report = Summarize({fast, slow}, target);
  EXPECT_DOUBLE_EQ(report.lag_ms_p50, 100);
  EXPECT_DOUBLE_EQ(report.lag_ms_p99, 2500);
  EXPECT_DOUBLE_EQ(report.final_processing_ms_p95, 40);
  EXPECT_DOUBLE_EQ(report.final_queue_wait_ms_p95, 25);
  EXPECT_DOUBLE_EQ(report.partial_queue_wait_ms_p95, 9);
  EXPECT_FALSE(report.target_met);
  EXPECT_EQ(report.verdict, "missed: lag p99");

  target.final_processing_p95 = absl::Milliseconds(30);
  report = Summarize({fast, fast, failed}, target);
  EXPECT_EQ(report.failed_streams, 1);
  EXPECT_EQ(report.failures.at("RESOURCE_EXHAUSTED"), 1);
  EXPECT_EQ(report.verdict, "missed: 1 failed");

  report = Summarize({fast, slow}, target);
  EXPECT_EQ(report.verdict, "missed: lag p99, final processing p95");
  EXPECT_NE(ToJson(report).find("\"target_met\": false"), std::string::npos) << ToJson(report);

  EXPECT_EQ(Summarize({}, LoadTarget{}).verdict, "missed: no transcript updates");

  // With a target: finals under it meet it, no finals at all do not (their p95 read 0 before),
  // and paused reads (the lag then only sees the server's buffer) miss it.
  report = Summarize({fast, fast}, target);
  EXPECT_EQ(report.verdict, "met");
  StreamSamples no_finals = fast;
  no_finals.final_processing_ms.clear();
  EXPECT_EQ(Summarize({no_finals}, target).verdict, "missed: no final processing times");
  StreamSamples paused = fast;
  paused.warnings["FLOW_CONTROL"] = 2;
  EXPECT_EQ(Summarize({paused}, target).verdict, "missed: 2 FLOW_CONTROL warnings");
}

}  // namespace
}  // namespace speechllm::loadtest
