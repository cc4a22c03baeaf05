// Unary calls of the real server: Recognize of each fixture clip as a WAV file (MANUAL
// endpointing, token ids) equals the offline speechllm-transcribe output and the golden greedy
// tokens; Recognize without audio is INVALID_ARGUMENT; GetCapabilities describes the tiny model;
// grpc.health.v1.Health answers SERVING.
#include <cstdio>
#include <string>

#include "absl/strings/str_join.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/server/harness.h"

namespace speechllm::itest {
namespace {

class UnaryTest : public SharedServerTest<UnaryTest> {
 protected:
  static grpc::Status Recognize(const v1::RecognizeRequest& request,
                                v1::RecognizeResponse* response) {
    return RecognizeOn(server_->stub(), request, response);
  }
};

v1::SessionConfig WavConfig(v1::AudioFormat::Encoding encoding) {
  v1::SessionConfig config;
  config.mutable_audio()->set_encoding(encoding);
  config.mutable_results()->set_token_ids(true);
  config.mutable_results()->set_final_mode(v1::ResultOptions::EXACT);
  config.mutable_endpointing()->set_mode(v1::Endpointing::MANUAL);
  return config;
}

TEST_F(UnaryTest, RecognizeOfEachClipEqualsOffline) {
  for (const std::string clip : {"clip_a", "clip_b"}) {
    // WAV declared, and WAV sniffed from ENCODING_UNSPECIFIED.
    for (auto encoding : {v1::AudioFormat::WAV, v1::AudioFormat::ENCODING_UNSPECIFIED}) {
      const std::string what = clip + (encoding == v1::AudioFormat::WAV ? " (WAV)" : " (sniffed)");
      SCOPED_TRACE(what);
      v1::RecognizeRequest request;
      *request.mutable_config() = WavConfig(encoding);
      request.set_audio(ClipWavBytes(clip));
      v1::RecognizeResponse response;
      const grpc::Status status = Recognize(request, &response);
      ASSERT_TRUE(status.ok()) << Describe(status);
      ASSERT_EQ(response.results_size(), 1);
      const v1::TranscriptUpdate& result = response.results(0);
      EXPECT_TRUE(result.is_final());
      const std::vector<int64_t> ids(result.token_ids().begin(), result.token_ids().end());
      const double duration =
          response.audio_duration().seconds() + response.audio_duration().nanos() * 1e-9;
      std::printf("[recognize] %-18s %.3f s of audio in %.3f s, confidence %.4f: %s\n",
                  what.c_str(), duration,
                  response.processing().seconds() + response.processing().nanos() * 1e-9,
                  result.confidence(), Ids(ids).c_str());
      // The geometric-mean token probability (its value: EngineModelTest's log-probability test).
      EXPECT_GT(result.confidence(), 0.0f);
      EXPECT_LE(result.confidence(), 1.0f);
      EXPECT_EQ(Ids(ids), Ids(OfflineTokens(clip))) << "Recognize differs from offline";
      EXPECT_EQ(Ids(ids), Ids(GoldenTokens(clip))) << "Recognize differs from the HF greedy ids";
      EXPECT_NEAR(duration, ClipPcm(clip).size() / 32000.0, 0.002);
    }
  }
}

TEST_F(UnaryTest, RecognizeWithoutAudioIsInvalidArgument) {
  v1::RecognizeRequest request;
  *request.mutable_config() = WavConfig(v1::AudioFormat::WAV);
  request.set_audio("");
  v1::RecognizeResponse response;
  const grpc::Status status = Recognize(request, &response);
  std::printf("[recognize] empty audio -> %s\n", Describe(status).c_str());
  ExpectError(status, grpc::StatusCode::INVALID_ARGUMENT, "AUDIO_DECODE_ERROR");
  EXPECT_EQ(ParseDetails(status).fields, std::vector<std::string>{"audio"});
  // A healthy call afterwards still works.
  request.set_audio(ClipWavBytes("clip_a"));
  ASSERT_TRUE(Recognize(request, &response).ok());
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(response.results(0).token_ids_size(), 24);
}

TEST_F(UnaryTest, GetCapabilitiesDescribesTheTinyModel) {
  grpc::ClientContext context;
  v1::Capabilities caps;
  const grpc::Status status = server_->stub()->GetCapabilities(&context, {}, &caps);
  ASSERT_TRUE(status.ok()) << Describe(status);
  std::printf("[capabilities] %s\n", caps.ShortDebugString().c_str());
  ASSERT_EQ(caps.models_size(), 1);
  EXPECT_EQ(caps.models(0).name(), "qwen2-audio");
  EXPECT_TRUE(caps.models(0).is_default());
  EXPECT_EQ(caps.models(0).hidden_size(), 64u);
  EXPECT_FLOAT_EQ(caps.models(0).audio_tokens_per_second(), 25.0f);
  EXPECT_FALSE(caps.server_version().empty());
  bool has_s16 = false;
  for (int e : caps.encodings()) has_s16 |= e == v1::AudioFormat::PCM_S16LE;
  EXPECT_TRUE(has_s16);
  EXPECT_EQ(caps.limits().max_chunk_bytes(), 64u * 1024u);
}

TEST_F(UnaryTest, HealthServiceIsServing) {
  auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel);
  for (const std::string service : {"", "speechllm.v1.StreamingSpeech"}) {
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    const grpc::Status status = health->Check(&context, request, &response);
    ASSERT_TRUE(status.ok()) << Describe(status);
    std::printf(
        "[health] \"%s\": %s\n", service.c_str(),
        grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()).c_str());
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  }
}

}  // namespace
}  // namespace speechllm::itest
