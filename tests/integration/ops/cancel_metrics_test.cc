// Cancelled streams in the metrics (label integration): every stream its client cancels, before
// or after its config, counts CANCELLED. gRPC completes the failed read and the cancel notice of
// one RST_STREAM in either order, so the server counts a call in OnDone, where IsCancelled() is
// final; counted at Finish, a cancel read first as a half-close without a config was
// INVALID_ARGUMENT (CONFIG_NOT_FIRST). That order was not produced here in 150 cancels, with or
// without a CPU hog: this test checks the counts, not the race.
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/ops/limits_fixture.h"

namespace speechllm::opstest {
namespace {

TEST_F(OpsLimits, StreamsTheClientCancelsCountAsCancelled) {
  StartServer({});
  constexpr int kStreamsEach = 25;
  v1::StreamingRecognizeRequest config;
  *config.mutable_config() = PcmStreamOptions(false).config;
  v1::StreamingRecognizeRequest audio;
  audio.mutable_audio()->set_data(ClipBytes().substr(0, 6400));  // 200 ms
  for (int i = 0; i < 2 * kStreamsEach; ++i) {
    grpc::ClientContext context;
    auto stream = stub_->StreamingRecognize(&context);
    if (i >= kStreamsEach) {  // the second half cancels after its config and some audio
      ASSERT_TRUE(stream->Write(config));
      ASSERT_TRUE(stream->Write(audio));
      v1::StreamingRecognizeResponse started;
      ASSERT_TRUE(stream->Read(&started));  // admitted
    }
    absl::SleepFor(absl::Milliseconds(30));  // the server is reading
    context.TryCancel();
    EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  // The server counts a call when gRPC is done with it, a little after the client's Finish.
  for (int i = 0; i < 500; ++i) {
    auto now = Scrape(server_->metrics_port());
    ASSERT_TRUE(now.ok()) << now.status();
    if (Value(*now, R"(speechllm_streams_total{code="CANCELLED"})") -
            Value(before_, R"(speechllm_streams_total{code="CANCELLED"})") +
            Value(*now, R"(speechllm_streams_total{code="INVALID_ARGUMENT"})") -
            Value(before_, R"(speechllm_streams_total{code="INVALID_ARGUMENT"})") >=
        2 * kStreamsEach) {
      break;
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(Delta(R"(speechllm_streams_total{code="CANCELLED"})"), 2 * kStreamsEach);
  EXPECT_EQ(Delta(R"(speechllm_streams_total{code="INVALID_ARGUMENT"})"), 0);
  EXPECT_EQ(Delta(Calls("StreamingRecognize", "OK")), 0);
}

}  // namespace
}  // namespace speechllm::opstest
