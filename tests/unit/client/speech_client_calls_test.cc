// StreamingClient against the scripted in-process server of scripted_server.h, its call side:
// message order, half-close and final status, controls, error propagation, rejection, metadata,
// deadlines, cancel, paused reads, destruction mid-call. Audio side: speech_client_test.cc.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/speech_client.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/unit/client/streaming_client_fixture.h"

namespace speechllm::client {
namespace {

using speechllm::v1::StreamingRecognizeRequest;
using ::testing::ElementsAre;

TEST_F(StreamingClientTest, ConfigFirstThenAudioThenHalfCloseAndFinalStatus) {
  service_.script.partial_every_n_chunks = 1;
  StreamingClientOptions options = Options(16000, 1, /*realtime=*/false);
  options.config.set_client_session_id("abc");
  StreamingClient client(stub_.get(), options);
  std::vector<uint64_t> seqs_seen_by_callback;
  client.SetResponseCallback([&](const ResponseRecord& record) {
    seqs_seen_by_callback.push_back(record.response.response_seq());
  });
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.SendSamples(std::vector<float>(4800, 0.0f)).ok());  // 3 chunks
  ASSERT_TRUE(client.CloseSend().ok());
  ASSERT_TRUE(client.Await().ok());

  const auto requests = Requests();
  ASSERT_EQ(requests.size(), 4u);
  ASSERT_TRUE(requests[0].has_config());
  EXPECT_EQ(requests[0].config().client_session_id(), "abc");
  EXPECT_EQ(requests[0].config().audio().sample_rate_hz(), 16000);
  EXPECT_TRUE(HalfClosed());

  const std::vector<ResponseRecord> records = client.responses();
  ASSERT_EQ(records.size(), 6u);  // started, c1..c3, final, summary
  EXPECT_TRUE(records.front().response.has_started());
  EXPECT_TRUE(records[4].response.transcript().is_final());
  EXPECT_TRUE(records.back().response.has_summary());
  std::vector<uint64_t> seqs;
  for (size_t i = 0; i < records.size(); ++i) {
    seqs.push_back(records[i].response.response_seq());
    if (i > 0) {
      EXPECT_GE(records[i].arrival_time, records[i - 1].arrival_time);
    }
    if (records[i].response.has_transcript() && !records[i].response.transcript().is_final()) {
      // The server answered after chunk n, so the client had sent at least n by then.
      const int n = std::stoi(records[i].response.transcript().tentative().substr(1));
      EXPECT_GE(records[i].chunks_sent, n);
    }
  }
  EXPECT_THAT(seqs, ElementsAre(0, 1, 2, 3, 4, 5));
  EXPECT_EQ(seqs_seen_by_callback, seqs);
  EXPECT_EQ(records[4].audio_sent, absl::Milliseconds(300));
  EXPECT_EQ(records[4].last_audio_sent_time, client.sent_chunks().back().send_time);
}

TEST_F(StreamingClientTest, ControlsKeepTheirPlaceAndSendTheAudioBeforeThem) {
  StreamingClient client(stub_.get(), Options(16000, 1, /*realtime=*/false));
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.SendAudio(std::string(4800, 'a')).ok());  // 150 ms: 3200 + 1600 at Flush
  ASSERT_TRUE(client.Flush().ok());
  ASSERT_TRUE(client.KeepAlive().ok());
  ASSERT_TRUE(client.SendAudio(std::string(1600, 'b')).ok());
  ASSERT_TRUE(client.EndOfAudio().ok());
  ASSERT_TRUE(client.CloseSend().ok());
  EXPECT_EQ(client.SendAudio("x").code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(client.Await().ok());

  std::vector<std::string> kinds;
  for (const auto& request : Requests()) {
    if (request.has_config()) kinds.push_back("config");
    if (request.has_audio()) kinds.push_back(absl::StrCat("audio", request.audio().data().size()));
    if (request.control().has_flush()) kinds.push_back("flush");
    if (request.control().has_keep_alive()) kinds.push_back("keep_alive");
    if (request.control().has_end_of_audio()) kinds.push_back("end_of_audio");
  }
  EXPECT_THAT(kinds, ElementsAre("config", "audio3200", "audio1600", "flush", "keep_alive",
                                 "audio1600", "end_of_audio"));
  EXPECT_TRUE(HalfClosed());
}

TEST_F(StreamingClientTest, SendRawAndNoConfigReachTheServerAsIs) {
  StreamingClientOptions options = Options(16000, 1, /*realtime=*/false);
  options.send_config = false;
  options.set_chunk_seq = false;
  StreamingClient client(stub_.get(), options);
  EXPECT_EQ(client.SendAudio("x").code(), absl::StatusCode::kFailedPrecondition);  // not started
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.SendAudio(std::string(100, 'a')).ok());
  StreamingRecognizeRequest second_config;
  second_config.mutable_config()->set_model("m");
  ASSERT_TRUE(client.SendRaw(second_config).ok());
  ASSERT_TRUE(client.CloseSend().ok());
  ASSERT_TRUE(client.Await().ok());
  const auto requests = Requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_TRUE(requests[0].has_audio());
  EXPECT_EQ(requests[0].audio().seq(), 0u);
  EXPECT_EQ(requests[1].config().model(), "m");
}

TEST_F(StreamingClientTest, ServerErrorWithDetailsReachesAwaitAndStopsPacedSending) {
  google::rpc::Status details;
  details.set_code(grpc::StatusCode::INVALID_ARGUMENT);
  google::rpc::ErrorInfo info;
  info.set_reason("BAD_CONFIG");
  details.add_details()->PackFrom(info);
  service_.script.fail_after_config = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                                   "sample rate 0", details.SerializeAsString());
  StreamingClient client(stub_.get(), Options(16000, 1, /*realtime=*/true));
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.SendSamples(std::vector<float>(16000 * 10, 0.0f)).ok());  // 10 s paced
  ASSERT_TRUE(client.CloseSend().ok());
  const grpc::Status status = client.Await();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "sample rate 0");
  google::rpc::Status received;
  ASSERT_TRUE(received.ParseFromString(status.error_details()));
  google::rpc::ErrorInfo received_info;
  ASSERT_TRUE(received.details(0).UnpackTo(&received_info));
  EXPECT_EQ(received_info.reason(), "BAD_CONFIG");
  EXPECT_LT(Seconds(client.done_time() - client.start_time()), 1.0);
  EXPECT_LT(client.sent_chunks().size(), 10u);
}

TEST_F(StreamingClientTest, RejectionAtStartGivesItsCodeAndNoResponses) {
  service_.script.reject_at_start = grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "full");
  StreamingClient client(stub_.get(), Options(16000, 1, /*realtime=*/false));
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.SendSamples(std::vector<float>(1600, 0.0f)).ok());
  ASSERT_TRUE(client.CloseSend().ok());
  EXPECT_EQ(client.Await().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(client.responses().empty());
}

TEST_F(StreamingClientTest, MetadataCarriesTheToken) {
  service_.script.required_token = "secret";
  {
    StreamingClient client(stub_.get(), Options(16000, 1, /*realtime=*/false));
    ASSERT_TRUE(client.Start().ok());
    ASSERT_TRUE(client.CloseSend().ok());
    EXPECT_EQ(client.Await().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  StreamingClientOptions options = Options(16000, 1, /*realtime=*/false);
  options.metadata.emplace_back("authorization", "Bearer secret");
  StreamingClient client(stub_.get(), options);
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.CloseSend().ok());
  EXPECT_TRUE(client.Await().ok());
}

// A deadline of 1e13 s overflowed system_clock's time_point into the past: the call ended at once
// with DEADLINE_EXCEEDED. Past a century it is no deadline.
TEST_F(StreamingClientTest, AFarDeadlineIsNoDeadline) {
  StreamingClientOptions options = Options(16000, 1, /*realtime=*/false);
  options.deadline = absl::Seconds(1e13);
  StreamingClient client(stub_.get(), options);
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.SendSamples(std::vector<float>(1600, 0.0f)).ok());
  ASSERT_TRUE(client.CloseSend().ok());
  const grpc::Status status = client.Await();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(StreamingClientTest, DeadlineEndsACallTheServerNeverFinishes) {
  service_.script.finish_on_half_close = false;
  StreamingClientOptions options = Options(16000, 1, /*realtime=*/false);
  options.deadline = absl::Milliseconds(200);
  StreamingClient client(stub_.get(), options);
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.SendSamples(std::vector<float>(1600, 0.0f)).ok());
  ASSERT_TRUE(client.CloseSend().ok());
  EXPECT_EQ(client.Await().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  const double elapsed_s = Seconds(client.done_time() - client.start_time());
  EXPECT_GE(elapsed_s, 0.15);
  EXPECT_LT(elapsed_s, 1.5);
}

TEST_F(StreamingClientTest, CancelEndsAPacedStreamPromptly) {
  StreamingClient client(stub_.get(), Options(16000, 1, /*realtime=*/true));
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.SendSamples(std::vector<float>(16000 * 10, 0.0f)).ok());
  EXPECT_FALSE(client.WaitForDone(absl::Milliseconds(150)));
  client.Cancel();
  EXPECT_EQ(client.Await().error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_LT(Seconds(client.done_time() - client.start_time()), 1.0);
}

TEST_F(StreamingClientTest, PausedReadsDeliverNothingUntilResumed) {
  service_.script.partials_at_start = 3;
  StreamingClient client(stub_.get(), Options(16000, 1, /*realtime=*/false));
  client.PauseReads();
  ASSERT_TRUE(client.Start().ok());
  absl::SleepFor(absl::Milliseconds(150));
  EXPECT_TRUE(client.responses().empty());
  client.ResumeReads();
  ASSERT_TRUE(client.CloseSend().ok());
  ASSERT_TRUE(client.Await().ok());
  EXPECT_EQ(client.responses().size(), 6u);  // started, p0..p2, final, summary
}

TEST_F(StreamingClientTest, DestructorCancelsARunningCall) {
  service_.script.finish_on_half_close = false;
  const Clock::time_point start = Clock::now();
  {
    StreamingClient client(stub_.get(), Options(16000, 1, /*realtime=*/true));
    ASSERT_TRUE(client.Start().ok());
    ASSERT_TRUE(client.SendSamples(std::vector<float>(16000 * 10, 0.0f)).ok());
  }
  EXPECT_LT(Seconds(Clock::now() - start), 1.0);
}

}  // namespace
}  // namespace speechllm::client
