// Unit tests (label unit) of the operations pieces without a server process: the token file and
// the auth processor, the metrics' exposition and per-call bookkeeping. The config rules:
// server_config_test.cc.
#include <chrono>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth.h"
#include "server/call_metrics.h"
#include "server/metrics.h"
#include "server/metrics_http.h"
#include "server/partial_erasure.h"
#include "server/server_config.h"
#include "tests/integration/ops/ops_harness.h"

namespace speechllm::server {
namespace {

using opstest::ParseMetrics;
using opstest::Value;
using ::testing::HasSubstr;

std::string TempFile(const std::string& name, const std::string& contents) {
  const std::string path = opstest::ScratchDir() + "/" + name;
  std::ofstream(path) << contents;
  return path;
}

double Sample(Metrics& metrics, const std::string& series) {
  auto samples = ParseMetrics(metrics.Scrape());
  EXPECT_TRUE(samples.ok()) << samples.status();
  return samples.ok() ? Value(*samples, series) : -1;
}

TEST(TokenFile, SkipsCommentsAndBlankLinesAndTrims) {
  auto tokens =
      ReadTokenFile(TempFile("tokens", "# team a\n\n  aaaaaaaaaaaaaaaa1  \nbbbbbbbbbbbbbbbb2\n"));
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_THAT(*tokens, ::testing::ElementsAre("aaaaaaaaaaaaaaaa1", "bbbbbbbbbbbbbbbb2"));
}

TEST(TokenFile, RefusesShortEmptyAndMissingFiles) {
  EXPECT_EQ(ReadTokenFile(TempFile("short", "tooshort\n")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadTokenFile(TempFile("empty", "# nothing\n")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadTokenFile(TempFile("space", "aaaaaaaa bbbbbbbbbb\n")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadTokenFile("/nonexistent/tokens").status().code(), absl::StatusCode::kNotFound);
}

class AuthProcessorTest : public ::testing::Test {
 protected:
  grpc::Status Call(const std::string& path, const std::string& authorization,
                    TokenAuthProcessor::Options options = {}) {
    TokenAuthProcessor processor({"the-right-token-0123"}, options, &metrics_);
    grpc::AuthMetadataProcessor::InputMetadata input;
    input.emplace(":path", path);
    if (!authorization.empty()) input.emplace("authorization", authorization);
    consumed_.clear();
    grpc::AuthMetadataProcessor::OutputMetadata response;
    return processor.Process(input, nullptr, &consumed_, &response);
  }
  Metrics metrics_{"test"};
  grpc::AuthMetadataProcessor::OutputMetadata consumed_;
};

TEST_F(AuthProcessorTest, AcceptsTheTokenAndConsumesIt) {
  EXPECT_TRUE(Call("/speechllm.v1.StreamingSpeech/Recognize", "Bearer the-right-token-0123").ok());
  EXPECT_EQ(consumed_.count("authorization"), 1u);
  EXPECT_TRUE(Call("/speechllm.v1.StreamingSpeech/Recognize", "bearer the-right-token-0123").ok());
}

TEST_F(AuthProcessorTest, RefusesMissingAndWrongTokensAndCountsThem) {
  const grpc::Status missing = Call("/speechllm.v1.StreamingSpeech/Recognize", "");
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(missing.error_message(), HasSubstr("TOKEN_MISSING"));
  for (const char* wrong : {"Bearer the-right-token-012", "Bearer the-right-token-01234",
                            "Basic the-right-token-0123", "the-right-token-0123", "Bearer "}) {
    const grpc::Status status = Call("/speechllm.v1.StreamingSpeech/Recognize", wrong);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << wrong;
    EXPECT_THAT(status.error_message(), HasSubstr("TOKEN_INVALID")) << wrong;
  }
  EXPECT_EQ(Sample(metrics_, R"(speechllm_auth_failures_total{reason="token_missing"})"), 1);
  EXPECT_EQ(Sample(metrics_, R"(speechllm_auth_failures_total{reason="token_invalid"})"), 5);
}

TEST_F(AuthProcessorTest, HealthIsExemptReflectionOnlyByOption) {
  EXPECT_TRUE(Call("/grpc.health.v1.Health/Check", "").ok());
  EXPECT_TRUE(Call("/grpc.health.v1.Health/Watch", "").ok());
  const std::string reflection = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
  EXPECT_FALSE(Call(reflection, "").ok());
  TokenAuthProcessor::Options open;
  open.exempt_reflection = true;
  EXPECT_TRUE(Call(reflection, "", open).ok());
  open.exempt_health = false;
  EXPECT_FALSE(Call("/grpc.health.v1.Health/Check", "", open).ok());
}

TEST(MetricsTest, ExpositionHasEveryFamilyAndEngineValues) {
  Metrics metrics("1.2.3");
  engine::EngineStats stats;
  stats.steps = 7;
  stats.kv_blocks_total = 100;
  stats.kv_blocks_used = 25;
  stats.tokens_generated = 42;
  stats.wait_time = absl::Milliseconds(250);
  metrics.SetEngineStatsSource([stats] { return stats; });
  engine::StepRecord step;
  step.duration = absl::Milliseconds(3);
  step.sequences = 2;
  step.decoder_tokens = 9;
  step.prefill_tokens = 8;
  step.encoder_tokens = 25;
  step.failed_sequences = 1;  // failed alone: the step ran again in parts
  step.executions = 5;
  metrics.OnStep(step);
  engine::StepRecord all_failed;  // split, and every stream failed alone: a failed step
  all_failed.duration = absl::Seconds(1);
  all_failed.sequences = 100;
  all_failed.ok = false;
  all_failed.failed_sequences = 100;
  all_failed.executions = 199;
  metrics.OnStep(all_failed);
  engine::StepRecord graph_step;  // a decode-only step replayed as a CUDA graph
  graph_step.duration = absl::Milliseconds(3);
  graph_step.sequences = graph_step.decoder_tokens = 1;
  graph_step.decode_graph = true;
  metrics.OnStep(graph_step);
  auto samples = ParseMetrics(metrics.Scrape());
  ASSERT_TRUE(samples.ok()) << samples.status();
  EXPECT_EQ(Value(*samples, R"(speechllm_build_info{version="1.2.3"})"), 1);
  EXPECT_EQ(Value(*samples, "speechllm_engine_steps_total"), 7);
  EXPECT_EQ(Value(*samples, "speechllm_kv_cache_usage_ratio"), 0.25);
  EXPECT_EQ(Value(*samples, "speechllm_tokens_generated_total"), 42);
  EXPECT_EQ(Value(*samples, "speechllm_engine_device_wait_seconds_total"), 0.25);
  EXPECT_EQ(Value(*samples, "speechllm_encoder_tokens_total"), 25);
  EXPECT_EQ(Value(*samples, "speechllm_prefill_tokens_total"), 8);
  EXPECT_EQ(Value(*samples, "speechllm_engine_decode_graph_steps_total"), 1);
  EXPECT_EQ(Value(*samples, "speechllm_engine_isolated_failures_total"), 1);
  EXPECT_EQ(Value(*samples, "speechllm_engine_step_failures_total"), 2);
  EXPECT_EQ(Value(*samples, "speechllm_engine_step_reruns_total"), 4 + 198);
  EXPECT_EQ(Value(*samples, R"(speechllm_engine_step_sequences_bucket{le="2"})"), 2);
  EXPECT_EQ(Value(*samples, R"(speechllm_engine_step_duration_seconds_bucket{le="0.0025"})"), 0);
  EXPECT_EQ(Value(*samples, R"(speechllm_engine_step_duration_seconds_bucket{le="0.005"})"), 2);
  for (const auto& [series, value] : *samples) {
    EXPECT_EQ(series.rfind("speechllm_", 0), 0u) << series;
  }
}

// A server that fails right after starting its metrics port (an unwritable --metrics_port_file)
// destroys the HTTP server at once (with cpp-httplib, whose stop() ignored a listener not yet in
// its accept loop, the join waited forever: seen as a server killed after 60 s).
TEST(MetricsHttpServerTest, DestroyedRightAfterStartItStops) {
  Metrics metrics("1.2.3");
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) {
    auto server = MetricsHttpServer::Start("127.0.0.1:0", &metrics);
    ASSERT_TRUE(server.ok()) << server.status();
    ASSERT_GT((*server)->port(), 0);
  }  // each destroyed at once
  std::printf(
      "200 start/stop cycles in %.0f ms\n",
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
}

// The client's deadline timer fires before the server's copy (arrival + grpc-timeout) runs out, so
// its cancel reaches the server just before the deadline: 5 of 5 streams past a 1.5 s deadline were
// counted CANCELLED. A cancel seconds before the deadline stays a cancel.
TEST(CallMetricsTest, ACancelJustBeforeTheDeadlineIsTheDeadline) {
  Metrics metrics("test");
  const auto now = std::chrono::system_clock::now();
  CallMetrics at_deadline(&metrics, RpcMethod::kStreamingRecognize);
  at_deadline.Ended(grpc::StatusCode::CANCELLED, now + std::chrono::milliseconds(200));
  CallMetrics early(&metrics, RpcMethod::kStreamingRecognize);
  early.Ended(grpc::StatusCode::CANCELLED, now + std::chrono::seconds(5));
  EXPECT_EQ(Sample(metrics, R"(speechllm_streams_total{code="DEADLINE_EXCEEDED"})"), 1);
  EXPECT_EQ(Sample(metrics, R"(speechllm_streams_total{code="CANCELLED"})"), 1);
}

TEST(CallMetricsTest, CountsOneEndAndMapsDeadlines) {
  Metrics metrics("test");
  {
    CallMetrics call(&metrics, RpcMethod::kStreamingRecognize);
    call.Admitted();
    EXPECT_EQ(Sample(metrics, "speechllm_streams_active"), 1);
    call.Ended(grpc::StatusCode::CANCELLED,
               std::chrono::system_clock::now() - std::chrono::seconds(1));
    call.Ended(grpc::StatusCode::OK);  // ignored: a call ends once
    EXPECT_EQ(Sample(metrics, "speechllm_streams_active"), 0);
  }
  EXPECT_EQ(Sample(metrics, R"(speechllm_requests_total{code="DEADLINE_EXCEEDED",)"
                            R"(method="StreamingRecognize"})"),
            1);
  EXPECT_EQ(Sample(metrics, R"(speechllm_requests_total{code="OK",method="StreamingRecognize"})"),
            0);
  EXPECT_EQ(Sample(metrics, R"(speechllm_streams_total{code="DEADLINE_EXCEEDED"})"), 1);
  CallMetrics recognize(&metrics, RpcMethod::kRecognize);
  recognize.Rejected(AdmissionReason::kDraining);
  recognize.Ended(grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(Sample(metrics, R"(speechllm_recognize_rejected_total{reason="draining"})"), 1);
  EXPECT_EQ(Sample(metrics, R"(speechllm_streams_rejected_total{reason="draining"})"), 0);
  EXPECT_EQ(Sample(metrics, R"(speechllm_streams_total{code="UNAVAILABLE"})"), 0);  // not a stream
  CallMetrics unadmitted(nullptr, RpcMethod::kRecognize);  // null metrics: no-ops
  unadmitted.Admitted();
  unadmitted.Ended(grpc::StatusCode::OK);
}

// The first-partial latency is the session's (speech onset's arrival -> first partial with text);
// every transcript samples the lag and advances the processed audio.
TEST(CallMetricsTest, FirstPartialLatencyAndLagComeFromTheEvents) {
  Metrics metrics("test");
  CallMetrics call(&metrics, RpcMethod::kStreamingRecognize);
  call.SetStreamOffset(100.0);
  call.Audio(3.0);
  streaming::SessionEvent partial;
  partial.kind = streaming::SessionEvent::Kind::kTranscript;
  partial.transcript.utterance_id = 0;
  partial.transcript.tentative = "hi";
  partial.transcript.first_partial_latency = absl::Milliseconds(700);
  partial.transcript.queue_wait = absl::Milliseconds(30);
  partial.audio_received_seconds = 103.0;
  partial.audio_processed_seconds = 102.0;
  call.Event(partial);
  partial.transcript.first_partial_latency.reset();  // later partials of the utterance
  call.Event(partial);
  auto samples = ParseMetrics(metrics.Scrape());
  ASSERT_TRUE(samples.ok());
  EXPECT_EQ(Value(*samples, "speechllm_first_partial_latency_seconds_count"), 1);
  EXPECT_NEAR(Value(*samples, "speechllm_first_partial_latency_seconds_sum"), 0.7, 1e-9);
  // Every partial sent samples its queue wait; no final was sent.
  EXPECT_EQ(Value(*samples, R"(speechllm_engine_queue_wait_seconds_count{result="partial"})"), 2);
  EXPECT_NEAR(Value(*samples, R"(speechllm_engine_queue_wait_seconds_sum{result="partial"})"), 0.06,
              1e-9);
  EXPECT_EQ(Value(*samples, R"(speechllm_engine_queue_wait_seconds_count{result="final"})"), 0);
  EXPECT_EQ(Value(*samples, "speechllm_stream_lag_seconds_count"), 2);
  EXPECT_NEAR(Value(*samples, "speechllm_stream_lag_seconds_sum"), 2.0, 1e-9);
  EXPECT_NEAR(Value(*samples, "speechllm_audio_processed_seconds_total"), 2.0, 1e-9);
  EXPECT_NEAR(Value(*samples, "speechllm_audio_seconds_total"), 3.0, 1e-9);
}

// A Recognize call hands a whole file over at once: its finals would put the rest of the file into
// the stream-lag histogram (130 s per final for a 290 s file) and page
// SpeechllmStreamsFallingBehind.
TEST(CallMetricsTest, RecognizeFinalsStayOutOfTheStreamingHistograms) {
  Metrics metrics("test");
  CallMetrics call(&metrics, RpcMethod::kRecognize);
  call.Audio(290.0);
  streaming::SessionEvent final0;
  final0.kind = streaming::SessionEvent::Kind::kTranscript;
  final0.transcript.is_final = true;
  final0.transcript.committed_delta = "hello";
  final0.transcript.processing = absl::Seconds(2);
  final0.audio_received_seconds = 290.0;
  final0.audio_processed_seconds = 20.0;
  call.Event(final0);
  auto samples = ParseMetrics(metrics.Scrape());
  ASSERT_TRUE(samples.ok());
  EXPECT_EQ(Value(*samples, "speechllm_stream_lag_seconds_count"), 0);
  EXPECT_EQ(Value(*samples, R"(speechllm_final_latency_seconds_count{part="total"})"), 0);
  EXPECT_NEAR(Value(*samples, "speechllm_audio_processed_seconds_total"), 20.0, 1e-9);
}

streaming::SessionEvent Transcript(int64_t utterance, const std::string& committed_delta,
                                   const std::string& tentative, bool is_final = false) {
  streaming::SessionEvent event;
  event.kind = streaming::SessionEvent::Kind::kTranscript;
  event.transcript.utterance_id = utterance;
  event.transcript.committed_delta = committed_delta;
  event.transcript.tentative = tentative;
  event.transcript.is_final = is_final;
  return event;
}

// API.md 5: speechllm_final_latency_seconds{part}, speechllm_flush_latency_seconds and
// speechllm_committed_revisions_total from the finals' timing and flags.
TEST(CallMetricsTest, FinalsGiveLatencyPartsFlushLatencyAndRevisions) {
  Metrics metrics("test");
  CallMetrics call(&metrics, RpcMethod::kStreamingRecognize);
  streaming::SessionEvent final0 = Transcript(0, "hello", "", true);
  final0.transcript.endpoint_wait = absl::Milliseconds(500);
  final0.transcript.processing = absl::Milliseconds(200);
  call.Event(final0);
  streaming::SessionEvent final1 = Transcript(1, "again", "", true);  // closed by a Flush
  final1.transcript.from_flush = true;
  final1.transcript.processing = absl::Milliseconds(300);
  final1.transcript.revises_committed = true;
  call.Event(final1);
  streaming::SessionEvent final2 = Transcript(2, "", "", true);  // a Flush with nothing pending
  final2.transcript.from_flush = final2.transcript.empty_flush = true;
  final2.transcript.processing = absl::Milliseconds(1);
  call.Event(final2);
  auto samples = ParseMetrics(metrics.Scrape());
  ASSERT_TRUE(samples.ok());
  const std::string total = R"(speechllm_final_latency_seconds_sum{part="total"})";
  const std::string wait = R"(speechllm_final_latency_seconds_sum{part="endpoint_wait"})";
  const std::string processing = R"(speechllm_final_latency_seconds_sum{part="processing"})";
  EXPECT_EQ(Value(*samples, R"(speechllm_final_latency_seconds_count{part="total"})"), 2);
  EXPECT_NEAR(Value(*samples, total), 1.0, 1e-9);
  EXPECT_NEAR(Value(*samples, wait), 0.5, 1e-9);
  EXPECT_NEAR(Value(*samples, processing), 0.5, 1e-9);
  EXPECT_EQ(Value(*samples, "speechllm_flush_latency_seconds_count"), 2);
  EXPECT_NEAR(Value(*samples, "speechllm_flush_latency_seconds_sum"), 0.301, 1e-9);
  EXPECT_EQ(Value(*samples, "speechllm_committed_revisions_total"), 1);
  // Two finals with words, neither ever taken back.
  EXPECT_EQ(Value(*samples, R"(speechllm_partial_erasure_ratio_bucket{le="0"})"), 2);
}

TEST(CallMetricsTest, CommitConflictsAreCountedOnceFromTheStreamsRunningTotal) {
  Metrics metrics("test");
  CallMetrics call(&metrics, RpcMethod::kStreamingRecognize);
  for (int64_t total : {0, 2, 2, 5}) {
    streaming::SessionEvent event = Transcript(0, "", "x");
    event.commit_conflicts = total;
    call.Event(event);
  }
  EXPECT_EQ(Sample(metrics, "speechllm_commit_conflicts_total"), 5);
}

TEST(PartialErasureTest, WordsOfSpacedAndUnspacedScripts) {
  EXPECT_THAT(DisplayedWords("  the cat,\tsat\n"), ::testing::ElementsAre("the", "cat,", "sat"));
  // Each CJK character or kana is a word; Latin runs between them stay whole. Korean puts spaces
  // between words: a Hangul word is one word.
  EXPECT_THAT(DisplayedWords("我们ok走"), ::testing::ElementsAre("我", "们", "ok", "走"));
  EXPECT_THAT(DisplayedWords("학교에 갑니다"), ::testing::ElementsAre("학교에", "갑니다"));
  EXPECT_THAT(DisplayedWords("café über"), ::testing::ElementsAre("café", "über"));
  EXPECT_TRUE(DisplayedWords(" \t").empty());
}

// The normalized erasure of arXiv 2004.03643 over the displayed texts committed + tentative.
TEST(PartialErasureTest, CountsWordsTakenBackOverTheFinalsWords) {
  PartialErasure erasure;
  using streaming::SessionEvent;
  EXPECT_FALSE(erasure.Update(Transcript(0, "", "the ca").transcript));
  EXPECT_FALSE(erasure.Update(Transcript(0, "", "the cat").transcript));      // grew: kept
  EXPECT_FALSE(erasure.Update(Transcript(0, "the ", "cap sat").transcript));  // "cat" erased
  EXPECT_FALSE(erasure.Update(Transcript(1, "", "other").transcript));        // its own utterance
  // The final "the cat sat on": "cap sat" erased; 3 erased words over 4.
  auto ratio = erasure.Update(Transcript(0, "cat sat on", "", true).transcript);
  ASSERT_TRUE(ratio.has_value());
  EXPECT_DOUBLE_EQ(*ratio, 3.0 / 4.0);
  EXPECT_EQ(erasure.open_utterances(), 1u);
  // A final without words has no ratio (0 / 0), and its utterance is forgotten.
  EXPECT_FALSE(erasure.Update(Transcript(1, "", "", true).transcript));
  EXPECT_EQ(erasure.open_utterances(), 0u);
}

}  // namespace
}  // namespace speechllm::server
