// Every server limit on the real speechllm-server (label integration): each produces its documented
// status (API.md 3, README "Running in production") and increments its metric, read from /metrics
// before and after. One server per test, started with the limit set low. The drain and deadlines:
// drain_deadline_test.cc.
#include <iostream>

#include "gtest/gtest.h"
#include "tests/integration/ops/limits_fixture.h"
#include "tests/integration/ops/ops_harness.h"

namespace speechllm::opstest {
namespace {

TEST_F(OpsLimits, MaxStreamsIsResourceExhaustedWithRetryInfo) {
  StartServer({"--max_streams=2"});
  std::vector<std::unique_ptr<client::StreamingClient>> open;
  for (int i = 0; i < 2; ++i) {
    open.push_back(OpenAdmittedStream(/*realtime=*/true));
    ASSERT_NE(open.back(), nullptr);
  }
  client::StreamingClient third(stub_.get(), PcmStreamOptions(false));
  ASSERT_TRUE(third.Start().ok());
  const grpc::Status status = third.Await();
  // Recognize is refused the same way, with the retry pushback trailer as well.
  v1::RecognizeRequest recognize;
  *recognize.mutable_config() = PcmStreamOptions(false).config;
  recognize.set_audio(ClipBytes());
  v1::RecognizeResponse recognized;
  grpc::ClientContext recognize_context;
  const grpc::Status refused = stub_->Recognize(&recognize_context, recognize, &recognized);
  const auto& trailers = recognize_context.GetServerTrailingMetadata();
  const auto pushback = trailers.find("grpc-retry-pushback-ms");
  std::cout << "Recognize at max_streams=2: code " << refused.error_code() << " pushback "
            << (pushback == trailers.end()
                    ? "none"
                    : std::string(pushback->second.data(), pushback->second.size()))
            << "\n";
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(DetailsOf(refused).retry_info);
  EXPECT_NE(pushback, trailers.end());
  for (auto& stream : open) {
    (void)stream->CloseSend();
    EXPECT_TRUE(stream->Await().ok());
  }
  const Details details = DetailsOf(status);
  std::cout << "third stream at max_streams=2: code " << status.error_code() << " reason "
            << details.reason << " retry_info " << details.retry_info << " \""
            << status.error_message() << "\"\n";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(details.reason, "MAX_STREAMS");
  EXPECT_TRUE(details.retry_info);
  EXPECT_EQ(Delta(Limit("max_streams")), 2);
  EXPECT_EQ(Delta(R"(speechllm_streams_rejected_total{reason="max_streams"})"), 1);
  EXPECT_EQ(Delta(R"(speechllm_recognize_rejected_total{reason="max_streams"})"), 1);
  EXPECT_EQ(Delta(R"(speechllm_streams_total{code="RESOURCE_EXHAUSTED"})"), 1);
  EXPECT_EQ(Delta(Calls("StreamingRecognize", "RESOURCE_EXHAUSTED")), 1);
  EXPECT_EQ(Delta(Calls("Recognize", "RESOURCE_EXHAUSTED")), 1);
  EXPECT_EQ(Delta(Calls("StreamingRecognize", "OK")), 2);
}

TEST_F(OpsLimits, KvBudgetIsResourceExhaustedWithRetryInfo) {
  // 1 MiB of KV cache (128 blocks of the tiny model) holds one stream that may write 1024 tokens
  // per utterance (about 98 blocks with its 20 s of audio), not two.
  StartServer({"--kv_cache_mb=1", "--max_new_tokens=1024"});
  const auto first = OpenAdmittedStream(/*realtime=*/true);
  ASSERT_NE(first, nullptr);
  client::StreamingClient second(stub_.get(), PcmStreamOptions(false));
  ASSERT_TRUE(second.Start().ok());
  const grpc::Status status = second.Await();
  (void)first->CloseSend();
  EXPECT_TRUE(first->Await().ok());
  const Details details = DetailsOf(status);
  std::cout << "second stream with 1 MiB of KV cache: code " << status.error_code() << " reason "
            << details.reason << " retry_info " << details.retry_info << " \""
            << status.error_message() << "\"\n";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(details.reason, "KV_BUDGET");
  EXPECT_TRUE(details.retry_info);
  EXPECT_EQ(Delta(Limit("kv_budget")), 1);
  EXPECT_EQ(Delta(R"(speechllm_streams_rejected_total{reason="kv"})"), 1);
  EXPECT_EQ(Delta(Calls("StreamingRecognize", "RESOURCE_EXHAUSTED")), 1);
}

TEST_F(OpsLimits, OversizedChunkIsInvalidArgument) {
  StartServer({"--max_chunk_bytes=4096"});
  client::StreamingClientOptions options = PcmStreamOptions(false);
  options.chunk_bytes = 8192;
  client::StreamingClient stream(stub_.get(), options);
  ASSERT_TRUE(stream.Start().ok());
  ASSERT_TRUE(stream.SendAudio(ClipBytes()).ok());
  (void)stream.CloseSend();
  const grpc::Status status = stream.Await();
  std::cout << "8192-byte chunk at max_chunk_bytes=4096: code " << status.error_code() << " reason "
            << DetailsOf(status).reason << "\n";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(DetailsOf(status).reason, "CHUNK_TOO_LARGE");
  EXPECT_EQ(Delta(Limit("max_chunk_bytes")), 1);
  EXPECT_EQ(Delta(Calls("StreamingRecognize", "INVALID_ARGUMENT")), 1);
}

TEST_F(OpsLimits, IdleStreamIsOutOfRange) {
  StartServer({"--idle_timeout_s=1"});
  client::StreamingClient stream(stub_.get(), PcmStreamOptions(false));
  const absl::Time start = absl::Now();
  ASSERT_TRUE(stream.Start().ok());
  const grpc::Status status = stream.Await();  // the config, then silence
  const absl::Duration waited = absl::Now() - start;
  std::cout << "idle stream at idle_timeout_s=1: code " << status.error_code() << " reason "
            << DetailsOf(status).reason << " after " << waited << "\n";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(DetailsOf(status).reason, "IDLE_TIMEOUT");
  EXPECT_GE(waited, absl::Seconds(1));
  EXPECT_LT(waited, absl::Seconds(5));
  EXPECT_EQ(Delta(Limit("idle_timeout")), 1);
  EXPECT_EQ(Delta(Calls("StreamingRecognize", "OUT_OF_RANGE")), 1);
}

TEST_F(OpsLimits, LongStreamIsOutOfRange) {
  StartServer({"--max_stream_duration_s=2", "--idle_timeout_s=30"});
  client::StreamingClient stream(stub_.get(), PcmStreamOptions(false));
  const absl::Time start = absl::Now();
  ASSERT_TRUE(stream.Start().ok());
  while (!stream.WaitForDone(absl::Milliseconds(200))) (void)stream.KeepAlive();
  const grpc::Status status = stream.Await();
  const absl::Duration waited = absl::Now() - start;
  std::cout << "stream kept alive at max_stream_duration_s=2: code " << status.error_code()
            << " reason " << DetailsOf(status).reason << " after " << waited << "\n";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(DetailsOf(status).reason, "MAX_DURATION");
  EXPECT_GE(waited, absl::Seconds(2));
  EXPECT_LT(waited, absl::Seconds(6));
  EXPECT_EQ(Delta(Limit("max_stream_duration")), 1);
  EXPECT_EQ(Delta(Calls("StreamingRecognize", "OUT_OF_RANGE")), 1);
}

TEST_F(OpsLimits, BufferedAudioPausesReadingWithFlowControl) {
  // 40 ms encoder chunks: many engine updates per second of audio, so the engine falls behind a
  // client that sends 13.5 s at once.
  StartServer({"--max_buffered_audio_ms=2000", "--chunk_ms=40"});
  client::StreamingClientOptions options = PcmStreamOptions(false);
  options.config.mutable_results()->set_interim_results(true);  // chunks go to the engine
  client::StreamingClient stream(stub_.get(), options);
  ASSERT_TRUE(stream.Start().ok());
  const std::string clip = ClipBytes();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(stream.SendAudio(clip).ok());
  (void)stream.CloseSend();
  const grpc::Status status = stream.Await();
  int flow_control = 0;
  int backlog = 0;
  for (const auto& record : stream.responses()) {
    if (!record.response.has_warning()) continue;
    flow_control += record.response.warning().code() == v1::Warning::FLOW_CONTROL;
    backlog += record.response.warning().code() == v1::Warning::BACKLOG;
  }
  std::cout << "13.5 s sent at once, max_buffered_audio_ms=2000: code " << status.error_code()
            << ", FLOW_CONTROL warnings " << flow_control << ", BACKLOG warnings " << backlog
            << "\n";
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(flow_control, 1);
  EXPECT_GE(Delta(Limit("max_buffered_audio")), 1);
  EXPECT_EQ(Delta(R"(speechllm_warnings_total{code="FLOW_CONTROL"})"), 1);
  // Results lagged the audio by more than 2 s (API.md 2.1): at least once, and the metric agrees.
  EXPECT_GE(backlog, 1);
  EXPECT_EQ(Delta(R"(speechllm_warnings_total{code="BACKLOG"})"), backlog);
}

// While the server pauses reading (flow control), the client cannot get a message through, so the
// idle timeout must not run: six streams send 27 s each at once to a server with a 1 s idle
// timeout, and every one ends OK after reads paused. Under ThreadSanitizer everything runs about
// six times slower on 2 cores, the test's own client threads too, so a 1 s gap between two of a
// client's messages is no sign of a server fault there: 3 s.
#if defined(SPEECHLLM_TSAN)
constexpr char kPausedReadsIdleTimeout[] = "--idle_timeout_s=3";
#else
constexpr char kPausedReadsIdleTimeout[] = "--idle_timeout_s=1";
#endif
TEST_F(OpsLimits, PausedReadsAreNotIdle) {
  StartServer({"--max_buffered_audio_ms=2000", "--chunk_ms=40", kPausedReadsIdleTimeout});
  client::StreamingClientOptions options = PcmStreamOptions(false);
  options.config.mutable_results()->set_interim_results(true);  // chunks go to the engine
  std::vector<std::unique_ptr<client::StreamingClient>> streams;
  const std::string clip = ClipBytes();
  for (int i = 0; i < 6; ++i) {
    streams.push_back(std::make_unique<client::StreamingClient>(stub_.get(), options));
    ASSERT_TRUE(streams.back()->Start().ok());
  }
  for (auto& stream : streams) {
    for (int k = 0; k < 8; ++k) ASSERT_TRUE(stream->SendAudio(clip).ok());
    (void)stream->CloseSend();
  }
  int ok = 0, flow_control = 0;
  for (auto& stream : streams) {
    const grpc::Status status = stream->Await();
    ok += status.ok();
    EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
    for (const auto& record : stream->responses()) {
      flow_control += record.response.has_warning() &&
                      record.response.warning().code() == v1::Warning::FLOW_CONTROL;
    }
  }
  std::cout << "6 streams of 27 s at once, " << kPausedReadsIdleTimeout << ": " << ok << " OK, "
            << flow_control << " FLOW_CONTROL warnings, paused reads "
            << Delta(Limit("max_buffered_audio")) << "\n";
  EXPECT_GE(flow_control, 1);  // reads did pause
  EXPECT_EQ(Delta(Limit("idle_timeout")), 0);
}

TEST_F(OpsLimits, ClientNotReadingIsResourceExhausted) {
  StartServer({"--max_pending_responses=16"});
  client::StreamingClient stream(stub_.get(), PcmStreamOptions(false));
  stream.PauseReads();
  ASSERT_TRUE(stream.Start().ok());
  // Every Flush is answered (an empty final and END_OF_UTTERANCE): the answers fill the HTTP/2
  // window, then the server's queue.
  int flushes = 0;
  double hits = 0;
  while (flushes < 100000 && hits == 0) {
    for (int i = 0; i < 2000; ++i, ++flushes) (void)stream.Flush();
    for (int i = 0; i < 20 && hits == 0; ++i) {
      absl::SleepFor(absl::Milliseconds(100));
      auto now = Scrape(server_->metrics_port());
      ASSERT_TRUE(now.ok());
      hits = Value(*now, Limit("max_pending_responses"));
    }
  }
  stream.ResumeReads();
  const grpc::Status status = stream.Await();
  std::cout << "client not reading after " << flushes << " flushes, max_pending_responses=16: code "
            << status.error_code() << " reason " << DetailsOf(status).reason << "\n";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(DetailsOf(status).reason, "QUEUE_FULL");
  EXPECT_EQ(Delta(Limit("max_pending_responses")), 1);
  EXPECT_EQ(Delta(Calls("StreamingRecognize", "RESOURCE_EXHAUSTED")), 1);
}

TEST_F(OpsLimits, MessageAboveReceiveLimitIsResourceExhausted) {
  StartServer({"--max_receive_message_bytes=1048576"});
  // A 1.5 MiB message is refused by the server (counted); a 3 MiB one, above twice the limit, by
  // gRPC's transport before any handler runs (same code, not countable).
  auto stream_with = [&](size_t bytes) {
    client::StreamingClient stream(stub_.get(), PcmStreamOptions(false));
    EXPECT_TRUE(stream.Start().ok());
    v1::StreamingRecognizeRequest big;
    big.mutable_audio()->set_data(std::string(bytes, '\0'));
    EXPECT_TRUE(stream.SendRaw(big).ok());
    (void)stream.CloseSend();
    return stream.Await();
  };
  const grpc::Status status = stream_with(3 << 19);
  grpc::ClientContext context;
  v1::RecognizeRequest request;
  request.set_audio(std::string(3 << 19, '\0'));
  v1::RecognizeResponse response;
  const grpc::Status recognize = stub_->Recognize(&context, request, &response);
  const grpc::Status transport = stream_with(3 << 20);
  std::cout << "1.5 MiB messages at max_receive_message_bytes=1 MiB: stream code "
            << status.error_code() << " reason " << DetailsOf(status).reason << " retry_info "
            << DetailsOf(status).retry_info << "; Recognize code " << recognize.error_code()
            << " reason " << DetailsOf(recognize).reason << "; 3 MiB: code "
            << transport.error_code() << " \"" << transport.error_message() << "\"\n";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(DetailsOf(status).reason, "MESSAGE_TOO_LARGE");
  EXPECT_FALSE(DetailsOf(status).retry_info);
  EXPECT_EQ(recognize.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(DetailsOf(recognize).reason, "MESSAGE_TOO_LARGE");
  EXPECT_EQ(transport.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_FALSE(DetailsOf(transport).retry_info);
  EXPECT_EQ(Delta(Limit("max_receive_message_bytes")), 2);
  EXPECT_EQ(Delta(Calls("StreamingRecognize", "RESOURCE_EXHAUSTED")), 1);
  EXPECT_EQ(Delta(Calls("Recognize", "RESOURCE_EXHAUSTED")), 1);
}

TEST_F(OpsLimits, LongRecognizeAudioIsInvalidArgument) {
  StartServer({"--max_recognize_audio_s=1"});
  grpc::ClientContext context;
  v1::RecognizeRequest request;
  request.mutable_config()->mutable_audio()->set_encoding(v1::AudioFormat::WAV);
  request.set_audio(ReadFileOrEmpty(ClipPath()));
  v1::RecognizeResponse response;
  const absl::Time start = absl::Now();
  const grpc::Status status = stub_->Recognize(&context, request, &response);
  std::cout << "3.37 s Recognize at max_recognize_audio_s=1: code " << status.error_code()
            << " reason " << DetailsOf(status).reason << " after " << absl::Now() - start << "\n";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(DetailsOf(status).reason, "AUDIO_TOO_LONG");
  EXPECT_EQ(Delta(Limit("max_recognize_audio")), 1);
  EXPECT_EQ(Delta(Calls("Recognize", "INVALID_ARGUMENT")), 1);
}

}  // namespace
}  // namespace speechllm::opstest
