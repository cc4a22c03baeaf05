// Unit tests (label unit) of the operations pieces without a server process: the token file and
// the auth processor, the metrics' exposition and per-call bookkeeping, the TLS/auth config rules.
#include <chrono>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth.h"
#include "server/metrics.h"
#include "server/metrics_http.h"
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
  metrics.SetEngineStatsSource([stats] { return stats; });
  engine::StepRecord step;
  step.duration = absl::Milliseconds(3);
  step.sequences = 2;
  step.decoder_tokens = 9;
  step.prefill_tokens = 8;
  step.encoder_tokens = 25;
  metrics.OnStep(step);
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
  EXPECT_EQ(Value(*samples, "speechllm_encoder_tokens_total"), 25);
  EXPECT_EQ(Value(*samples, "speechllm_prefill_tokens_total"), 8);
  EXPECT_EQ(Value(*samples, "speechllm_engine_decode_graph_steps_total"), 1);
  EXPECT_EQ(Value(*samples, R"(speechllm_engine_step_sequences_bucket{le="2"})"), 2);
  EXPECT_EQ(Value(*samples, R"(speechllm_engine_step_duration_seconds_bucket{le="0.0025"})"), 0);
  EXPECT_EQ(Value(*samples, R"(speechllm_engine_step_duration_seconds_bucket{le="0.005"})"), 2);
  for (const auto& [series, value] : *samples) {
    EXPECT_EQ(series.rfind("speechllm_", 0), 0u) << series;
  }
}

// A server that fails right after starting its metrics port (an unwritable --metrics_port_file)
// destroys the HTTP server at once: httplib's stop() ignored a listener not yet in its accept
// loop, and the join waited forever (seen as a server killed after 60 s).
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
  CallMetrics unadmitted(nullptr, RpcMethod::kRecognize);  // null metrics: no-ops
  unadmitted.Admitted();
  unadmitted.Ended(grpc::StatusCode::OK);
}

TEST(CallMetricsTest, FirstPartialCountsFromTheUtterancesFirstAudio) {
  Metrics metrics("test");
  CallMetrics call(&metrics, RpcMethod::kStreamingRecognize);
  call.SetStreamOffset(100.0);
  const absl::Time t0 = absl::Now() - absl::Seconds(10);
  for (int i = 1; i <= 30; ++i) call.Audio(0.1, t0 + absl::Milliseconds(100 * i));
  streaming::SessionEvent partial;
  partial.kind = streaming::SessionEvent::Kind::kTranscript;
  partial.transcript.utterance_id = 0;
  partial.transcript.utterance_start_seconds = 101.05;  // inside the 11th chunk, at t0 + 1.1 s
  partial.audio_received_seconds = 103.0;
  partial.audio_processed_seconds = 102.0;
  call.Event(partial);
  call.Event(partial);  // the same utterance: not a first partial
  auto samples = ParseMetrics(metrics.Scrape());
  ASSERT_TRUE(samples.ok());
  EXPECT_EQ(Value(*samples, "speechllm_first_partial_latency_seconds_count"), 1);
  EXPECT_NEAR(Value(*samples, "speechllm_first_partial_latency_seconds_sum"), 8.9, 0.5);
  EXPECT_EQ(Value(*samples, "speechllm_stream_lag_seconds_count"), 2);
  EXPECT_NEAR(Value(*samples, "speechllm_stream_lag_seconds_sum"), 2.0, 1e-9);
  EXPECT_NEAR(Value(*samples, "speechllm_audio_processed_seconds_total"), 2.0, 1e-9);
  EXPECT_NEAR(Value(*samples, "speechllm_audio_seconds_total"), 3.0, 1e-9);
}

TEST(ServerConfigTest, TlsAndTokenRules) {
  ServerConfig config;
  EXPECT_TRUE(config.Validate().ok());
  config.token_file = "/tokens";
  EXPECT_THAT(config.Validate().message(), HasSubstr("plaintext"));
  config.tls_cert_path = "/cert.pem";
  EXPECT_THAT(config.Validate().message(), HasSubstr("together"));
  config.tls_key_path = "/key.pem";
  config.tls_client_ca_path = "/ca.pem";
  EXPECT_TRUE(config.Validate().ok());
  config.max_receive_message_bytes = 1000;
  config.max_chunk_bytes = 500;
  EXPECT_TRUE(config.CheckMessageSize(1000).ok());
  const absl::Status too_large = config.CheckMessageSize(1001);
  EXPECT_EQ(too_large.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(config.transport_max_receive_message_bytes(), 2000);
  // 1 GiB is allowed; twice that does not fit gRPC's int (it used to wrap to a negative limit,
  // which gRPC ignores in favour of its 4 MiB default).
  config.max_receive_message_bytes = 1 << 30;
  config.max_chunk_bytes = 64 * 1024;
  EXPECT_TRUE(config.Validate().ok());
  EXPECT_EQ(config.transport_max_receive_message_bytes(), INT32_MAX);
}

// Server defaults that every call would be refused for (blaming the client's config) stop the
// server at start instead.
TEST(ServerConfigTest, DefaultsEveryCallWouldFailAreRefused) {
  ServerConfig config;
  config.default_chunk_ms = 50;
  EXPECT_THAT(config.Validate().message(), HasSubstr("--chunk_ms"));
  config.default_chunk_ms = 2000;
  config.max_buffered_audio_ms = 1000;
  EXPECT_THAT(config.Validate().message(), HasSubstr("at least --chunk_ms"));
  config.max_buffered_audio_ms = 10000;
  EXPECT_TRUE(config.Validate().ok());
  config.max_recognize_audio = absl::ZeroDuration();
  EXPECT_THAT(config.Validate().message(), HasSubstr("max_recognize_audio"));
}

TEST(ServerConfigTest, APlaintextHealthPortNeedsHealthExemptFromTokens) {
  ServerConfig config;
  config.tls_cert_path = "/cert.pem";
  config.tls_key_path = "/key.pem";
  config.token_file = "/tokens";
  config.health_listen_address = "127.0.0.1:9999";
  EXPECT_TRUE(config.Validate().ok());
  config.auth_exempt_health = false;
  EXPECT_THAT(config.Validate().message(), HasSubstr("auth_exempt_health"));
}

}  // namespace
}  // namespace speechllm::server
