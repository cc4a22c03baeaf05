// Server limits (issue 4, "Must show" 2) on a second server started with small limits:
// --max_streams 2, --idle_timeout_s 1, --max_stream_duration_s 2, --max_chunk_bytes 4096. Each
// limit gets its documented status and reason while a healthy clip_a stream on the same server
// still ends OK with the offline final; a client cancel frees the stream's slot and engine state.
#include <chrono>
#include <cstdio>
#include <future>
#include <map>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/integration/server/harness.h"

namespace speechllm::itest {
namespace {

using client::StreamingClient;
using client::StreamingClientOptions;
using grpc::StatusCode;

class LimitsTest : public SharedServerWithReferenceTest<LimitsTest> {
 public:
  static std::vector<std::string> ServerFlags() {  // read by SharedServerTest
    return {"--max_streams=2", "--idle_timeout_s=1", "--max_stream_duration_s=2",
            "--max_chunk_bytes=4096"};
  }

 protected:
  static StreamingClientOptions Options(bool realtime) {
    StreamingClientOptions options;
    options.realtime = realtime;
    options.chunk_ms = 100;
    options.config = ExactConfig(/*interim=*/true, v1::ResultOptions::LOCAL_AGREEMENT);
    return options;
  }
  static void Report(const char* what, const StreamRun& run) {
    std::printf(
        "[limits] %-36s -> %s after %.2f s (%zu responses, %d partials, %d finals, "
        "summary: %s)\n",
        what, Describe(run.status).c_str(), run.wall_s, run.records.size(),
        CountTranscripts(run.responses()) - CountFinals(run.responses()),
        CountFinals(run.responses()),
        !run.records.empty() && run.records.back().response.has_summary() ? "yes" : "no");
  }
  static void WaitForResponses(StreamingClient* client, size_t n, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (client->responses().size() < n && !client->WaitForDone(absl::Milliseconds(5)) &&
           absl::Now() < deadline) {
    }
  }
};

TEST_F(LimitsTest, ChunkLargerThanMaxChunkBytes) {
  HealthyStream healthy(server_->stub());  // 3200-byte chunks: under the limit
  StreamingClientOptions options = Options(false);
  options.chunk_bytes = 8192;
  StreamingClient client(server_->stub(), options);
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.SendAudio(ClipPcm("clip_a").substr(0, 32000)).ok());
  ASSERT_TRUE(client.CloseSend().ok());
  const StreamRun run = Collect(&client, absl::Seconds(30));
  Report("8192-byte chunks, limit 4096", run);
  ExpectError(run.status, StatusCode::INVALID_ARGUMENT, "CHUNK_TOO_LARGE");
  EXPECT_EQ(ParseDetails(run.status).fields, std::vector<std::string>{"audio.data"});
  ExpectWellFormed(run.responses(), "chunk too large");
  healthy.Finish("chunk too large");
}

// clip_b (7.9 s) paced in real time outlives the 2 s limit.
StreamRun StreamPastMaxDuration(v1::StreamingSpeech::Stub* stub, bool with_healthy_stream) {
  StreamingClientOptions options;
  options.realtime = true;
  options.chunk_ms = 100;
  options.config = ExactConfig(/*interim=*/true, v1::ResultOptions::LOCAL_AGREEMENT);
  StreamingClient client(stub, options);
  EXPECT_TRUE(client.Start().ok());
  EXPECT_TRUE(client.SendAudio(ClipPcm("clip_b")).ok());
  EXPECT_TRUE(client.CloseSend().ok());
  if (with_healthy_stream) {
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    HealthyStream healthy(stub);
    healthy.Finish("max duration");
  }
  return Collect(&client, absl::Seconds(30));
}

TEST_F(LimitsTest, StreamBeyondMaxDuration) {
  const StreamRun run = StreamPastMaxDuration(server_->stub(), /*with_healthy_stream=*/true);
  Report("clip_b in real time, max 2 s", run);
  ExpectError(run.status, StatusCode::OUT_OF_RANGE, "MAX_DURATION");
  EXPECT_GE(run.wall_s, 1.9);
  EXPECT_LT(run.wall_s, 5.0) << "the stream was not ended at its maximum duration";
  const auto responses = run.responses();
  ExpectWellFormed(responses, "max duration");
  ASSERT_FALSE(responses.empty());
  EXPECT_TRUE(responses.back().has_summary()) << "no SessionSummary before OUT_OF_RANGE";
}

// API.md section 3, "Finals first": before OUT_OF_RANGE the server sends the finals for audio it
// has already processed. The stream got partials for its open utterance, so that audio was
// processed and the utterance must be finalized before the summary.
// A time limit ends the stream only after the final of the audio already received (API.md 3).
TEST_F(LimitsTest, MaxDurationSendsFinalsFirst) {
  const StreamRun run = StreamPastMaxDuration(server_->stub(), /*with_healthy_stream=*/false);
  Report("clip_b in real time, finals first?", run);
  ExpectError(run.status, StatusCode::OUT_OF_RANGE, "MAX_DURATION");
  std::map<uint32_t, bool> finalized;
  for (const auto& r : run.responses()) {
    if (r.has_transcript()) finalized[r.transcript().utterance_id()] |= r.transcript().is_final();
  }
  EXPECT_FALSE(finalized.empty()) << "no partial in 2 s of real-time audio";
  for (const auto& [utterance, has_final] : finalized) {
    EXPECT_TRUE(has_final) << "utterance " << utterance
                           << " had partials but no final before OUT_OF_RANGE (finals first)";
  }
}

TEST_F(LimitsTest, IdleTimeout) {
  StreamingClient client(server_->stub(), Options(false));
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.SendAudio(ClipPcm("clip_a").substr(0, 6400)).ok());  // then silence
  WaitForResponses(&client, 1, absl::Seconds(5));
  HealthyStream healthy(server_->stub());
  healthy.Finish("idle timeout");
  const StreamRun run = Collect(&client, absl::Seconds(30));
  Report("200 ms of audio, then nothing", run);
  ExpectError(run.status, StatusCode::OUT_OF_RANGE, "IDLE_TIMEOUT");
  EXPECT_GE(run.wall_s, 0.9);
  EXPECT_LT(run.wall_s, 4.0) << "the idle stream was not ended after about 1 s";
  const auto responses = run.responses();
  ExpectWellFormed(responses, "idle timeout");
  ASSERT_FALSE(responses.empty());
  EXPECT_TRUE(responses.back().has_summary()) << "no SessionSummary before OUT_OF_RANGE";
}

TEST_F(LimitsTest, MoreStreamsThanTheAdmissionLimit) {
  HealthyStream first(server_->stub());
  HealthyStream second(server_->stub());
  StreamingClient third(server_->stub(), Options(false));
  ASSERT_TRUE(third.Start().ok());
  ASSERT_TRUE(third.SendAudio(ClipPcm("clip_a").substr(0, 3200)).ok());
  ASSERT_TRUE(third.CloseSend().ok());
  const StreamRun run = Collect(&third, absl::Seconds(30));
  Report("third stream, max_streams 2", run);
  ExpectError(run.status, StatusCode::RESOURCE_EXHAUSTED, "MAX_STREAMS");
  const ErrorDetails details = ParseDetails(run.status);
  EXPECT_TRUE(details.has_retry_info) << "no google.rpc.RetryInfo: " << Describe(run.status);
  EXPECT_GT(details.retry_delay, absl::ZeroDuration());
  std::printf("[limits] retry_delay %s\n", absl::FormatDuration(details.retry_delay).c_str());
  EXPECT_TRUE(run.records.empty()) << "a refused stream got responses";
  first.Finish("admission limit (first)");
  second.Finish("admission limit (second)");
  // Both slots are free again.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  ExpectMatchesOffline(RunStream(server_->stub(), StreamSpec{}), "clip_a", "after the refusal");
}

// A client cancel mid-stream: the client sees CANCELLED, the server keeps serving, and the stream's
// slot and engine sequence are freed (two new streams are admitted again on max_streams 2).
TEST_F(LimitsTest, ClientCancelMidStream) {
  StreamingClient client(server_->stub(), Options(true));
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.SendAudio(ClipPcm("clip_b")).ok());
  // Wait for a partial (the engine holds the stream's state), at most 1.5 s.
  const absl::Time deadline = absl::Now() + absl::Milliseconds(1500);
  const auto has_transcript = [&client] {
    for (const auto& record : client.responses())
      if (record.response.has_transcript()) return true;
    return false;
  };
  while (!has_transcript() && absl::Now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Opened now: an idle healthy stream would hit the 1 s idle timeout while we wait above.
  HealthyStream healthy(server_->stub());
  const size_t before_cancel = client.responses().size();
  client.Cancel();
  const StreamRun run = Collect(&client, absl::Seconds(10));
  Report("cancel after the first partial", run);
  EXPECT_EQ(run.status.error_code(), StatusCode::CANCELLED) << Describe(run.status);
  EXPECT_GE(before_cancel, 2u) << "no partial before the cancel";
  healthy.Finish("client cancel");
  EXPECT_TRUE(server_->Running());
  // The server frees the call and the engine sequence at its next step: give it a moment, then
  // both slots must admit at once.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  StreamSpec spec;
  auto a = std::async(std::launch::async, [&] { return RunStream(server_->stub(), spec); });
  auto b = std::async(std::launch::async, [&] { return RunStream(server_->stub(), spec); });
  const StreamRun run_a = a.get(), run_b = b.get();
  std::printf("[limits] after the cancel: %s, %s\n", Describe(run_a.status).c_str(),
              Describe(run_b.status).c_str());
  ExpectMatchesOffline(run_a, "clip_a", "first stream after the cancel");
  ExpectMatchesOffline(run_b, "clip_a", "second stream after the cancel");
}

}  // namespace
}  // namespace speechllm::itest
