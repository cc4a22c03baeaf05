// Unary calls of the real server: Recognize of each fixture clip as a WAV file (MANUAL
// endpointing, token ids) equals the offline speechllm-transcribe output and the golden greedy
// tokens; Recognize without audio is INVALID_ARGUMENT; GetCapabilities describes the tiny model;
// language hints are checked against the served languages and reported; stream_offset shifts
// every response; grpc.health.v1.Health answers SERVING.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <utility>
#include <vector>

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

// speech_start_timeout_ms is a live stream's: a whole file's silence at its start must not empty
// its result (it did, with no signal: Recognize has no SPEECH_START_TIMEOUT event to send).
TEST_F(UnaryTest, RecognizeIgnoresTheSpeechStartTimeout) {
  v1::RecognizeRequest request;
  request.mutable_config()->mutable_audio()->set_encoding(v1::AudioFormat::PCM_S16LE);
  request.mutable_config()->mutable_audio()->set_sample_rate_hz(16000);
  request.mutable_config()->mutable_endpointing()->set_speech_start_timeout_ms(100);
  request.set_audio(std::string(32000, '\0') + ClipPcm("clip_a"));  // 1 s of silence first
  v1::RecognizeResponse response;
  const grpc::Status status = Recognize(request, &response);
  ASSERT_TRUE(status.ok()) << Describe(status);
  std::printf("[recognize] 1 s of silence, then clip_a, speech_start_timeout_ms 100: %d results\n",
              response.results_size());
  ASSERT_GE(response.results_size(), 1);
  EXPECT_FALSE(response.results(0).committed_delta().empty());
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

// Languages (API.md 2.1): GetCapabilities lists the served ones (--languages, "en" by default); a
// request's hints must each name one (en-GB is en) or the call is INVALID_ARGUMENT on
// config.language_codes; results report the first hint, or the only served language without one.
TEST_F(UnaryTest, LanguageHintsAreCheckedAndResultsReportTheLanguage) {
  grpc::ClientContext context;
  v1::Capabilities caps;
  ASSERT_TRUE(server_->stub()->GetCapabilities(&context, {}, &caps).ok());
  ASSERT_EQ(caps.models_size(), 1);
  EXPECT_EQ(std::vector<std::string>(caps.models(0).language_codes().begin(),
                                     caps.models(0).language_codes().end()),
            std::vector<std::string>{"en"});
  for (const auto& [hints, reported] :
       {std::make_pair(std::vector<std::string>{}, std::string("en")),
        std::make_pair(std::vector<std::string>{"en-GB"}, std::string("en-GB")),
        std::make_pair(std::vector<std::string>{"EN", "en-US"}, std::string("EN"))}) {
    v1::RecognizeRequest request;
    *request.mutable_config() = WavConfig(v1::AudioFormat::WAV);
    for (const std::string& hint : hints) request.mutable_config()->add_language_codes(hint);
    request.set_audio(ClipWavBytes("clip_a"));
    v1::RecognizeResponse response;
    const grpc::Status status = Recognize(request, &response);
    std::printf("[language] Recognize with hints {%s}: %s, reports \"%s\"\n",
                absl::StrJoin(hints, ",").c_str(), Describe(status).c_str(),
                response.language_code().c_str());
    ASSERT_TRUE(status.ok()) << Describe(status);
    EXPECT_EQ(response.language_code(), reported);
    ASSERT_EQ(response.results_size(), 1);
    EXPECT_EQ(response.results(0).language_code(), reported);
    EXPECT_EQ(Ids({response.results(0).token_ids().begin(), response.results(0).token_ids().end()}),
              Ids(OfflineTokens("clip_a")))
        << "a hint does not change the prompt";
  }
  for (const std::vector<std::string>& hints :
       {std::vector<std::string>{"fr"}, std::vector<std::string>{"en", "de-DE"},
        std::vector<std::string>{"e"}, std::vector<std::string>{"en_US"},
        std::vector<std::string>{""}}) {
    v1::RecognizeRequest request;
    *request.mutable_config() = WavConfig(v1::AudioFormat::WAV);
    for (const std::string& hint : hints) request.mutable_config()->add_language_codes(hint);
    request.set_audio(ClipWavBytes("clip_a"));
    v1::RecognizeResponse response;
    const grpc::Status status = Recognize(request, &response);
    std::printf("[language] hints {%s}: %s\n", absl::StrJoin(hints, ",").c_str(),
                Describe(status).c_str());
    ExpectError(status, grpc::StatusCode::INVALID_ARGUMENT, "BAD_CONFIG");
    EXPECT_EQ(ParseDetails(status).fields, std::vector<std::string>{"config.language_codes"});
  }
  // A stream's every transcript reports the hint.
  StreamSpec spec;
  spec.config.add_language_codes("en-US");
  spec.config.mutable_results()->set_interim_results(true);
  spec.realtime = true;  // partials too (sent as fast as possible, newer ones replace them)
  const StreamRun run = RunStream(server_->stub(), spec);
  ASSERT_TRUE(run.status.ok()) << Describe(run.status);
  int transcripts = 0;
  for (const v1::StreamingRecognizeResponse& r : run.responses()) {
    if (!r.has_transcript()) continue;
    ++transcripts;
    EXPECT_EQ(r.transcript().language_code(), "en-US");
  }
  std::printf("[language] stream with hint en-US: %d transcripts, all report it\n", transcripts);
  EXPECT_GE(transcripts, 2);
}

// ResultOptions.timing fills ResultTiming (API.md 2.1); without it results carry none.
TEST_F(UnaryTest, ResultTimingOnlyWhenAsked) {
  for (const bool timing : {false, true}) {
    v1::RecognizeRequest request;
    *request.mutable_config() = WavConfig(v1::AudioFormat::WAV);
    request.mutable_config()->mutable_results()->set_timing(timing);
    request.set_audio(ClipWavBytes("clip_a"));
    v1::RecognizeResponse response;
    ASSERT_TRUE(Recognize(request, &response).ok());
    ASSERT_EQ(response.results_size(), 1);
    const v1::TranscriptUpdate& result = response.results(0);
    std::printf("[timing] asked %d: %s\n", timing, result.timing().ShortDebugString().c_str());
    EXPECT_EQ(result.has_timing(), timing);
    if (timing) {
      EXPECT_GT(result.timing().processing().seconds() * 1e9 + result.timing().processing().nanos(),
                0);
    }
  }
  StreamSpec spec;
  spec.config.mutable_results()->set_timing(true);
  const StreamRun run = RunStream(server_->stub(), spec);
  ASSERT_TRUE(run.status.ok()) << Describe(run.status);
  for (const v1::StreamingRecognizeResponse& r : run.responses()) {
    if (r.has_transcript()) {
      EXPECT_TRUE(r.transcript().has_timing());
    }
  }
}

// stream_offset is added to every offset of every response (API.md 2.1), SessionStarted's
// audio_received and audio_processed included.
TEST_F(UnaryTest, TheStreamOffsetShiftsEveryResponse) {
  StreamSpec spec;
  spec.config.mutable_stream_offset()->set_seconds(100);
  spec.config.mutable_results()->set_interim_results(true);
  const StreamRun run = RunStream(server_->stub(), spec);
  ASSERT_TRUE(run.status.ok()) << Describe(run.status);
  const auto seconds = [](const google::protobuf::Duration& d) {
    return d.seconds() + d.nanos() * 1e-9;
  };
  const std::vector<v1::StreamingRecognizeResponse> responses = run.responses();
  ASSERT_FALSE(responses.empty());
  ASSERT_TRUE(responses.front().has_started());
  EXPECT_EQ(seconds(responses.front().audio_received()), 100.0);
  EXPECT_EQ(seconds(responses.front().audio_processed()), 100.0);
  double last_end = 0;
  for (const v1::StreamingRecognizeResponse& r : responses) {
    EXPECT_GE(seconds(r.audio_received()), 100.0);
    EXPECT_GE(seconds(r.audio_processed()), 100.0);
    if (r.has_transcript()) {
      EXPECT_GE(seconds(r.transcript().utterance_start()), 100.0);
      last_end = seconds(r.transcript().result_end());
    }
  }
  std::printf("[offset] last result_end %.3f s for %.3f s of audio after 100 s\n", last_end,
              ClipPcm("clip_a").size() / 32000.0);
  EXPECT_NEAR(last_end, 100.0 + ClipPcm("clip_a").size() / 32000.0, 0.002);
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

// Values out of their documented range are BAD_CONFIG on their field (API.md 2.1), not clamped
// or passed on: a stream_offset that is no valid Duration or beyond a century (it would pin every
// offset and stall the processed-audio counter), a NaN boost (its phrase's index in the path),
// partials more than a minute apart, endpointing times outside their ranges.
TEST_F(UnaryTest, OutOfRangeValuesAreBadConfig) {
  struct Case {
    const char* field;
    void (*set)(v1::SessionConfig*);
    const char* message = "";  // expected in the status message
  };
  const Case cases[] = {
      {"config.stream_offset",
       [](v1::SessionConfig* c) { c->mutable_stream_offset()->set_seconds(400000000000); }},
      {"config.stream_offset",
       [](v1::SessionConfig* c) { c->mutable_stream_offset()->set_nanos(-5); }},
      {"config.stream_offset",
       [](v1::SessionConfig* c) { c->mutable_stream_offset()->set_nanos(2000000000); }},
      {"config.context.phrases[1].boost",
       [](v1::SessionConfig* c) {
         c->mutable_context()->add_phrases()->set_text("fine");
         v1::Phrase* phrase = c->mutable_context()->add_phrases();
         phrase->set_text("hello");
         phrase->set_boost(std::nanf(""));
       },
       "got nan"},
      // Endpointing values are checked as sent: 4e9 was clamped to 2^30 first and then quoted.
      {"config.endpointing.end_silence_ms",
       [](v1::SessionConfig* c) { c->mutable_endpointing()->set_end_silence_ms(4000000000u); },
       "must be in [10, 10000], or 0 for the default; got 4000000000"},
      {"config.endpointing.max_utterance_ms",
       [](v1::SessionConfig* c) { c->mutable_endpointing()->set_max_utterance_ms(50); }, "got 50"},
      {"config.endpointing.speech_start_timeout_ms",
       [](v1::SessionConfig* c) {
         c->mutable_endpointing()->set_speech_start_timeout_ms(4294967295u);
       },
       "got 4294967295"},
      {"config.results.partial_interval_ms",
       [](v1::SessionConfig* c) { c->mutable_results()->set_partial_interval_ms(60001); }},
  };
  for (const Case& c : cases) {
    v1::RecognizeRequest request;
    *request.mutable_config() = WavConfig(v1::AudioFormat::WAV);
    c.set(request.mutable_config());
    request.set_audio(ClipWavBytes("clip_a"));
    v1::RecognizeResponse response;
    const grpc::Status status = Recognize(request, &response);
    std::printf("[ranges] %s: %s\n", c.field, Describe(status).c_str());
    ExpectError(status, grpc::StatusCode::INVALID_ARGUMENT, "BAD_CONFIG");
    EXPECT_EQ(ParseDetails(status).fields, std::vector<std::string>{c.field});
    EXPECT_NE(status.error_message().find(c.message), std::string::npos) << Describe(status);
  }
  // The largest offset taken: a century.
  v1::RecognizeRequest request;
  *request.mutable_config() = WavConfig(v1::AudioFormat::WAV);
  request.mutable_config()->mutable_stream_offset()->set_seconds(int64_t{100} * 365 * 24 * 3600);
  request.mutable_config()->mutable_stream_offset()->set_nanos(999999999);
  request.set_audio(ClipWavBytes("clip_a"));
  v1::RecognizeResponse response;
  EXPECT_TRUE(Recognize(request, &response).ok());
}

// Health.Watch needs no token where health is exempt, so it is bounded: a service name over 256
// bytes is INVALID_ARGUMENT, and beyond 256 open watches a new one is RESOURCE_EXHAUSTED while
// Check still answers.
TEST_F(UnaryTest, HealthWatchesAreBounded) {
  auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(std::string(300, 'x'));
  {
    grpc::ClientContext context;
    auto watch = health->Watch(&context, request);
    grpc::health::v1::HealthCheckResponse response;
    EXPECT_FALSE(watch->Read(&response));
    const grpc::Status status = watch->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(status);
  }
  request.set_service("");
  constexpr int kWatches = 256;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<grpc::health::v1::HealthCheckResponse>>> watches;
  for (int i = 0; i <= kWatches; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    watches.push_back(health->Watch(contexts.back().get(), request));
    grpc::health::v1::HealthCheckResponse response;
    if (i < kWatches) {
      ASSERT_TRUE(watches.back()->Read(&response)) << "watch " << i;
      EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
    } else {
      EXPECT_FALSE(watches.back()->Read(&response));
      const grpc::Status status = watches.back()->Finish();
      std::printf("[health] watch %d: %s\n", i + 1, Describe(status).c_str());
      EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    }
  }
  grpc::ClientContext check_context;
  grpc::health::v1::HealthCheckResponse checked;
  EXPECT_TRUE(health->Check(&check_context, request, &checked).ok());
  for (int i = 0; i < kWatches; ++i) {
    contexts[i]->TryCancel();
    watches[i]->Finish();
  }
}

}  // namespace
}  // namespace speechllm::itest
