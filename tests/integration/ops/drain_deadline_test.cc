// The end of a call by time or by signal on the real speechllm-server (label integration): the
// drain on SIGTERM (UNAVAILABLE with RetryInfo for open streams, a second signal does not cut it
// short) and deadlines that pass during a Recognize call or a stream (DEADLINE_EXCEEDED in the
// metrics, not CANCELLED or OK). A signal during the start-up stops it at once, before any port.
#include <csignal>
#include <iostream>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/ops/limits_fixture.h"

namespace speechllm::opstest {
namespace {

// SIGTERM during the model load or warm-up was only queued: the server went on to open its ports,
// turn SERVING and write its port file, then drained (minutes for a large checkpoint, and Ctrl-C
// did nothing meanwhile). The signal comes right after the metrics port file, which is written
// before the model loads (about 250 ms before the gRPC port here). A signal that still came too
// late (the harness polls every 50 ms) finds the server serving: that try is drained and repeated.
TEST(OpsStartup, ASignalDuringTheStartUpStopsItBeforeAnyPort) {
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto server = ServerProcess::Start({}, /*wait_for_grpc_port=*/false);
    ASSERT_TRUE(server.ok()) << server.status();
    const absl::Time signalled = absl::Now();
    (*server)->Signal(SIGTERM);
    const absl::Status exited = (*server)->WaitForGrpcPort(absl::Seconds(30));
    std::cout << "SIGTERM at start-up, try " << attempt << ": " << exited << " after "
              << absl::ToInt64Milliseconds(absl::Now() - signalled) << " ms\n";
    if (exited.ok()) {  // serving before the signal: not this test's case
      EXPECT_EQ((*server)->Stop(), 0);
      continue;
    }
    EXPECT_NE(exited.message().find("exited with 0"), std::string::npos) << exited;
    EXPECT_NE(exited.message().find("stopped before serving"), std::string::npos) << exited;
    return;
  }
  ADD_FAILURE() << "three servers were serving before the signal came";
}

TEST_F(OpsLimits, DrainingEndsOpenStreamsWithRetryInfo) {
  StartServer({"--drain_grace_s=1"});
  const auto open = OpenAdmittedStream(/*realtime=*/false);
  ASSERT_NE(open, nullptr);
  // A Health.Watch of a service the server does not have stays SERVICE_UNKNOWN through the drain.
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::ClientContext watch_context;
  grpc::health::v1::HealthCheckRequest watch_request;
  watch_request.set_service("no.such.Service");
  auto watch = health->Watch(&watch_context, watch_request);
  grpc::health::v1::HealthCheckResponse watched;
  ASSERT_TRUE(watch->Read(&watched));
  EXPECT_EQ(watched.status(), grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN);
  int exit_code = -1;
  std::thread stopper([&] { exit_code = server_->Stop(); });
  const grpc::Status status = open->Await();
  std::vector<int> later;
  while (watch->Read(&watched)) later.push_back(watched.status());
  (void)watch->Finish();
  stopper.join();
  server_.reset();  // stopped already
  const Details details = DetailsOf(status);
  std::cout << "open stream at the drain: code " << status.error_code() << " reason "
            << details.reason << " retry_info " << details.retry_info << "; watch saw "
            << later.size() << " more statuses; exit code " << exit_code << "\n";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(details.reason, "DRAINING");
  EXPECT_TRUE(details.retry_info) << "UNAVAILABLE without RetryInfo means: do not retry";
  for (int s : later) EXPECT_EQ(s, grpc::health::v1::HealthCheckResponse::SERVICE_UNKNOWN);
  EXPECT_EQ(exit_code, 0);
}

// The drain sends GOAWAY at once: a client's connection stops being READY within moments, so a
// client that balances over DNS sends its next calls to another replica, while the open stream
// still gets its grace. The connection used to stay READY for the whole grace period, and every
// new call on it came back DRAINING.
TEST_F(OpsLimits, TheDrainTellsConnectedClientsToGoElsewhereAtOnce) {
  StartServer({"--drain_grace_s=3"});
  const auto open = OpenAdmittedStream(/*realtime=*/false);
  ASSERT_NE(open, nullptr);
  ASSERT_EQ(channel_->GetState(false), GRPC_CHANNEL_READY);
  server_->Signal(SIGTERM);
  const absl::Time signalled = absl::Now();
  while (channel_->GetState(false) == GRPC_CHANNEL_READY &&
         absl::Now() - signalled < absl::Seconds(2)) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  const absl::Duration left_ready = absl::Now() - signalled;
  const grpc::Status status = open->Await();
  std::cout << "the connection left READY " << absl::ToInt64Milliseconds(left_ready)
            << " ms after SIGTERM (grace 3 s); the open stream ended " << status.error_code() << " "
            << DetailsOf(status).reason << "\n";
  EXPECT_LT(left_ready, absl::Seconds(1));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(DetailsOf(status).reason, "DRAINING");
  EXPECT_EQ(server_->Stop(), 0);
  server_.reset();
}

// EndOfAudio ends the input as a half-close does (API.md 2.1): a stream that sent it and still
// waits for its finals is not cut off by the drain. It used to get all its finals and then
// UNAVAILABLE with RetryInfo, which tells the client to send the audio again elsewhere.
TEST_F(OpsLimits, AStreamThatSentEndOfAudioFinishesOkThroughTheDrain) {
  StartServer({"--drain_grace_s=0", "--max_buffered_audio_ms=600000"});
  client::StreamingClient stream(stub_.get(), PcmStreamOptions(/*realtime=*/false));
  ASSERT_TRUE(stream.Start().ok());
  std::string audio;
  for (int i = 0; i < 30; ++i) audio += ClipBytes();  // about 1.5 minutes: finals still to come
  ASSERT_TRUE(stream.SendAudio(audio).ok());
  ASSERT_TRUE(stream.EndOfAudio().ok());
  // The signal once the server has read all the audio (EndOfAudio is right behind it) while its
  // finals are still to come.
  const double total_seconds = audio.size() / 32000.0;
  double received = 0, processed = 0;
  for (int i = 0; i < 3000 && received < total_seconds - 0.01; ++i) {
    absl::SleepFor(absl::Milliseconds(2));
    const std::vector<client::ResponseRecord> records = stream.responses();
    if (records.empty()) continue;
    const v1::StreamingRecognizeResponse& last = records.back().response;
    received = last.audio_received().seconds() + last.audio_received().nanos() * 1e-9;
    processed = last.audio_processed().seconds() + last.audio_processed().nanos() * 1e-9;
  }
  absl::SleepFor(absl::Milliseconds(20));
  ASSERT_FALSE(stream.WaitForDone(absl::ZeroDuration()))
      << "the stream ended before the drain: nothing to check";
  std::cout << "signal with " << received << " of " << total_seconds << " s received, " << processed
            << " s processed\n";
  server_->Signal(SIGTERM);
  const grpc::Status status = stream.Await();
  int finals = 0;
  bool summary = false;
  for (const client::ResponseRecord& record : stream.responses()) {
    finals += record.response.has_transcript() && record.response.transcript().is_final() ? 1 : 0;
    summary |= record.response.has_summary();
  }
  const int exit_code = server_->Stop();
  server_.reset();
  std::cout << "EndOfAudio, then SIGTERM with no grace: " << status.error_code() << " "
            << status.error_message() << "; " << finals << " finals, summary " << summary
            << ", exit code " << exit_code << "\n";
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_GE(finals, 1);
  EXPECT_TRUE(summary);
  EXPECT_EQ(exit_code, 0);
}

// A second SIGTERM or Ctrl-C during the drain killed the server (exit by signal, no UNAVAILABLE
// for the open stream): a thread a library started before main() had not blocked the signals and
// took the second one with its default action.
TEST_F(OpsLimits, ASecondSignalDoesNotCutTheDrainShort) {
  StartServer({"--drain_grace_s=2"});
  const auto open = OpenAdmittedStream(/*realtime=*/false);
  ASSERT_NE(open, nullptr);
  server_->Signal(SIGTERM);
  absl::SleepFor(absl::Milliseconds(500));
  server_->Signal(SIGINT);
  absl::SleepFor(absl::Milliseconds(200));
  server_->Signal(SIGTERM);
  const grpc::Status status = open->Await();
  const int exit_code = server_->Stop();
  const std::string log = server_->Log();
  server_.reset();
  std::cout << "three signals in 0.7 s: open stream " << status.error_code() << ", exit code "
            << exit_code << "\n";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(DetailsOf(status).reason, "DRAINING");
  EXPECT_EQ(exit_code, 0) << log;
}

TEST_F(OpsLimits, ARecognizePastItsDeadlineCountsAsDeadlineExceeded) {
  StartServer({});
  std::string audio;
  for (int i = 0; i < 80; ++i) audio += ClipBytes();  // about 4 minutes: seconds of work
  v1::RecognizeRequest request;
  *request.mutable_config() = PcmStreamOptions(false).config;
  request.set_audio(audio);
  v1::RecognizeResponse response;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  const grpc::Status status = stub_->Recognize(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  double counted = 0;
  // The server notices the cancel once the handler has handed the audio over (seconds under TSan).
  for (int i = 0; i < 600 && counted == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(100));
    counted = Delta(Calls("Recognize", "DEADLINE_EXCEEDED"));
  }
  std::cout << "Recognize of " << audio.size() / 32000 << " s with a 300 ms deadline: counted "
            << counted << " DEADLINE_EXCEEDED, " << Delta(Calls("Recognize", "CANCELLED"))
            << " CANCELLED\n";
  EXPECT_EQ(counted, 1);
  EXPECT_EQ(Delta(Calls("Recognize", "CANCELLED")), 0);
}

// Streams whose deadline passes mid-stream, paced in real time: each is counted DEADLINE_EXCEEDED.
// The server used to take the cancel's end of reads for a half-close and finish the stream OK when
// nothing was pending (8 of 8 stdin runs of a reviewer), else count the client's early cancel as
// CANCELLED (5 of 5).
TEST_F(OpsLimits, StreamsPastTheirDeadlineCountAsDeadlineExceeded) {
  StartServer({});
  constexpr int kStreams = 4;
  for (int i = 0; i < kStreams; ++i) {
    client::StreamingClientOptions options = PcmStreamOptions(/*realtime=*/true);
    options.deadline = absl::Milliseconds(i % 2 == 0 ? 1000 : 1500);
    client::StreamingClient stream(stub_.get(), options);
    ASSERT_TRUE(stream.Start().ok());
    // Silence (nothing pending when the deadline passes) or speech (a partial in the works).
    ASSERT_TRUE(stream.SendAudio(i < 2 ? std::string(32000 * 5, '\0') : ClipBytes()).ok());
    EXPECT_EQ(stream.Await().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  const std::string deadline_series = R"(speechllm_streams_total{code="DEADLINE_EXCEEDED"})";
  const std::string ok_series = R"(speechllm_streams_total{code="OK"})";
  const std::string cancelled_series = R"(speechllm_streams_total{code="CANCELLED"})";
  for (int i = 0; i < 100; ++i) {  // every stream's end counted (by any code), or 10 s
    auto now = Scrape(server_->metrics_port());
    double ended = 0;
    for (const std::string& series : {deadline_series, ok_series, cancelled_series}) {
      ended += now.ok() ? Value(*now, series) - Value(before_, series) : 0;
    }
    if (ended >= kStreams) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(Delta(deadline_series), kStreams);
  EXPECT_EQ(Delta(ok_series), 0);
  EXPECT_EQ(Delta(cancelled_series), 0);
  EXPECT_EQ(Delta(Calls("StreamingRecognize", "DEADLINE_EXCEEDED")), kStreams);
}

}  // namespace
}  // namespace speechllm::opstest
