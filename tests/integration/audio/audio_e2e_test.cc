// Audio formats end to end (label integration): the real speechllm-server with the tiny model
// (tests/integration/server/harness.h), MANUAL endpointing, EXACT finals with token ids, no
// interim results. The 16 kHz clip as float32 or as two identical channels gives exactly the
// 16-bit mono (offline) tokens, and so does its FLAC; WebM Opus gives the tokens of the Ogg Opus it
// was muxed from; every other encoding and rate decodes to a full-length final; Recognize takes WAV
// at any rate and sniffs Ogg Opus, WebM and FLAC, and decodes WAV as streams do (a config its
// header contradicts is BAD_CONFIG); malformed audio is INVALID_ARGUMENT saying
// what was wrong while a concurrent healthy stream finishes correctly; the client CLI sends Ogg
// Opus files and encodes WAV or stdin PCM to Opus on the fly.
#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/audio/audio_e2e_util.h"

namespace speechllm::itest {
namespace {

using streaming::audio_test::Sox;
constexpr char kS16[] = "-t raw -e signed-integer -b 16 -L";
v1::AudioFormat Mulaw8k() { return Format(v1::AudioFormat::MULAW, 8000, 1); }

class AudioE2eTest : public SharedServerTest<AudioE2eTest> {
 protected:
  // Streams `bytes` in `format` (chunks of random size, 1..chunk_bytes) and half-closes.
  static StreamRun Stream(const std::string& bytes, const v1::AudioFormat& format,
                          int64_t chunk_bytes = 4000) {
    return StreamOn(server_->stub(), bytes, format, chunk_bytes);
  }

  static grpc::Status Recognize(const std::string& bytes, const v1::AudioFormat& format,
                                v1::RecognizeResponse* response) {
    v1::RecognizeRequest request;
    *request.mutable_config() = ExactConfig(false, v1::ResultOptions::NONE);
    *request.mutable_config()->mutable_audio() = format;
    request.set_audio(bytes);
    return RecognizeOn(server_->stub(), request, response);
  }

  // Streams `bytes` in `format` in one message (exact finals, no interim results), then `last`,
  // half-closes and collects. `close_must_succeed` is false when `last` may end the call first.
  static void StreamThen(const std::string& bytes, const v1::AudioFormat& format,
                         const v1::StreamingRecognizeRequest& last, bool close_must_succeed,
                         StreamRun* run) {
    client::StreamingClientOptions options;
    options.realtime = false;
    options.config = ExactConfig(false, v1::ResultOptions::NONE);
    *options.config.mutable_audio() = format;
    client::StreamingClient client(server_->stub(), options);
    ASSERT_TRUE(client.Start().ok());
    ASSERT_TRUE(client.SendAudio(bytes).ok());
    ASSERT_TRUE(client.SendRaw(last).ok());
    const bool closed = client.CloseSend().ok();
    if (close_must_succeed) {
      ASSERT_TRUE(closed);
    }
    *run = Collect(&client, absl::Seconds(60));
  }

  // The run's finals, copied: responses() builds a new vector at each call, so pointers into it
  // would dangle.
  static std::vector<v1::TranscriptUpdate> Finals(const StreamRun& run) {
    std::vector<v1::TranscriptUpdate> finals;
    for (const auto& r : run.responses()) {
      if (r.has_transcript() && r.transcript().is_final()) finals.push_back(r.transcript());
    }
    return finals;
  }

  static double AudioTotal(const StreamRun& run) {
    for (const auto& r : run.responses()) {
      if (r.has_summary()) return Seconds(r.summary().audio_total());
    }
    return -1;
  }
};

TEST_F(AudioE2eTest, FloatAndIdenticalStereoGiveTheOriginalTranscript) {
  const std::string s16 = ClipPcm("clip_a");
  std::string f32, s16_stereo, f32_stereo;
  for (size_t i = 0; i + 1 < s16.size(); i += 2) {
    int16_t v;
    std::memcpy(&v, s16.data() + i, 2);
    const float f = v / 32768.0f;
    const std::string fb(reinterpret_cast<const char*>(&f), 4);
    f32 += fb;
    f32_stereo += fb + fb;
    s16_stereo += s16.substr(i, 2) + s16.substr(i, 2);
  }
  // Chunks are cut with AudioChunk message boundaries inside samples and frames (Stream()).
  for (const auto& [name, bytes, format] :
       {std::make_tuple("s16 mono", s16, Format(v1::AudioFormat::PCM_S16LE, 16000, 1)),
        std::make_tuple("f32 mono", f32, Format(v1::AudioFormat::PCM_F32LE, 16000, 1)),
        std::make_tuple("s16 stereo", s16_stereo, Format(v1::AudioFormat::PCM_S16LE, 16000, 2)),
        std::make_tuple("f32 stereo", f32_stereo, Format(v1::AudioFormat::PCM_F32LE, 16000, 2))}) {
    const StreamRun run = Stream(bytes, format);
    std::printf("%-10s %7zu bytes: %s, final %s\n", name, bytes.size(),
                Describe(run.status).c_str(), Ids(FinalTokenIds(run.responses())).c_str());
    ExpectMatchesOffline(run, "clip_a", name);
  }
}

struct Converted {
  std::string name;
  std::string bytes;
  v1::AudioFormat format;
  bool resampled;  // the server resamples it to 16 kHz
};

std::vector<Converted> ConvertedClips() {
  const std::string a = ClipPath("clip_a");
  const std::string aa = a + " " + a + " -M";
  const std::string wav48 = ScratchDir() + "/a48_stereo.wav";
  WriteFile(wav48, Sox(aa, "-r 48000 -b 16 -t wav", "a48.wav"));
  using F = v1::AudioFormat;
  return {
      {"pcm_s16_8k", Sox(a, absl::StrCat("-r 8000 ", kS16), "8k"), Format(F::PCM_S16LE, 8000, 1),
       true},
      {"pcm_s16_22050", Sox(a, absl::StrCat("-r 22050 ", kS16), "22k"),
       Format(F::PCM_S16LE, 22050, 1), true},
      {"pcm_s16_44100", Sox(a, absl::StrCat("-r 44100 ", kS16), "44k"),
       Format(F::PCM_S16LE, 44100, 1), true},
      {"pcm_s16_48k_st", Sox(aa, absl::StrCat("-r 48000 ", kS16), "48k"),
       Format(F::PCM_S16LE, 48000, 2), true},
      {"pcm_f32_44100", Sox(a, "-r 44100 -t raw -e floating-point -b 32 -L", "f44"),
       Format(F::PCM_F32LE, 44100, 1), true},
      {"mulaw_8k", Sox(a, "-r 8000 -t raw -e mu-law -b 8", "ul"), Format(F::MULAW, 0, 0), true},
      {"alaw_8k", Sox(a, "-r 8000 -t raw -e a-law -b 8", "al"), Format(F::ALAW, 8000, 1), true},
      {"ogg_opus_16k", streaming::audio_test::OpusEnc(a, "", "a.opus"), Format(F::OGG_OPUS, 0, 0),
       false},
      {"ogg_opus_48k_st", streaming::audio_test::OpusEnc(wav48, "--bitrate 48", "a48.opus"),
       Format(F::OGG_OPUS, 48000, 2), false},
      {"webm_opus_16k",
       streaming::audio_test::ToWebm(streaming::audio_test::OpusEnc(a, "", "w.opus"), "", "w"),
       Format(F::WEBM_OPUS, 0, 0), false},
      {"flac_16k", Sox(a, "-t flac", "a.flac"), Format(F::FLAC, 0, 0), false},
      {"flac_44100_st", Sox(aa, "-r 44100 -t flac", "a44.flac"), Format(F::FLAC, 44100, 2), true},
      {"wav_16k", ClipWavBytes("clip_a"), Format(F::WAV, 0, 0), false},
      {"wav_44100_st_24", Sox(aa, "-r 44100 -b 24 -t wav", "a44.wav"), Format(F::WAV, 0, 0), true},
  };
}

TEST_F(AudioE2eTest, EveryEncodingAndRateStreamsAndMatchesRecognize) {
  const std::vector<int64_t> offline = OfflineTokens("clip_a");
  std::map<std::string, std::vector<int64_t>> streamed_by_name;
  for (const Converted& c : ConvertedClips()) {
    ASSERT_FALSE(c.bytes.empty()) << c.name;
    const StreamRun run = Stream(c.bytes, c.format);
    const std::vector<int64_t> streamed = FinalTokenIds(run.responses());
    v1::RecognizeResponse unary;
    const grpc::Status status = Recognize(c.bytes, c.format, &unary);
    std::vector<int64_t> recognized;
    for (const auto& result : unary.results())
      recognized.insert(recognized.end(), result.token_ids().begin(), result.token_ids().end());
    int same_as_offline = 0;
    for (size_t i = 0; i < std::min(streamed.size(), offline.size()); ++i)
      same_as_offline += streamed[i] == offline[i];
    std::printf(
        "%-16s %7zu bytes: stream %s, audio %.4f s, %d/24 tokens as 16 kHz offline; "
        "Recognize %s, same tokens: %s\n  stream %s\n",
        c.name.c_str(), c.bytes.size(), Describe(run.status).c_str(), AudioTotal(run),
        same_as_offline, Describe(status).c_str(), recognized == streamed ? "yes" : "no",
        Ids(streamed).c_str());
    EXPECT_TRUE(run.status.ok()) << c.name << ": " << Describe(run.status);
    EXPECT_EQ(CountFinals(run.responses()), 1) << c.name;
    EXPECT_EQ(streamed.size(), 24u) << c.name;
    // Resampled streams include the resampler's tail (AudioDecoder::Finish): within a sample or
    // two.
    EXPECT_NEAR(AudioTotal(run), 3.37, c.resampled ? 0.002 : 0.0005) << c.name;
    EXPECT_TRUE(status.ok()) << c.name << ": " << Describe(status);
    EXPECT_NEAR(Seconds(unary.audio_duration()), 3.37, 0.005) << c.name;
    if (!c.resampled) {
      EXPECT_EQ(Ids(recognized), Ids(streamed)) << c.name;
    }
    streamed_by_name[c.name] = streamed;
  }
  // Undeclared containers are told by their first bytes: the same tokens as declared.
  for (const Converted& c : ConvertedClips()) {
    if (c.format.encoding() != v1::AudioFormat::WEBM_OPUS &&
        c.format.encoding() != v1::AudioFormat::FLAC &&
        c.format.encoding() != v1::AudioFormat::WAV) {
      continue;
    }
    const StreamRun run = Stream(c.bytes, Format(v1::AudioFormat::ENCODING_UNSPECIFIED, 0, 0));
    std::printf("%-16s undeclared: stream %s, same tokens as declared: %s\n", c.name.c_str(),
                Describe(run.status).c_str(),
                FinalTokenIds(run.responses()) == streamed_by_name[c.name] ? "yes" : "no");
    EXPECT_TRUE(run.status.ok()) << c.name << ": " << Describe(run.status);
    EXPECT_EQ(Ids(FinalTokenIds(run.responses())), Ids(streamed_by_name[c.name])) << c.name;
  }
  // FLAC is lossless, and the WAV is the clip itself: the 16 kHz clip's tokens exactly. WebM
  // carries the same Opus packets as the Ogg file it was muxed from: the same samples, so the
  // same tokens.
  EXPECT_EQ(Ids(streamed_by_name["wav_16k"]), Ids(offline));
  EXPECT_EQ(Ids(streamed_by_name["flac_16k"]), Ids(offline));
  EXPECT_EQ(Ids(streamed_by_name["webm_opus_16k"]), Ids(streamed_by_name["ogg_opus_16k"]));
}

// "Flush: everything received before it is finalized" (API.md 2.1), the resampler's delayed
// samples (114 ms at 8 kHz) included: the flushed final of 8 kHz mu-law covers the whole clip
// and has the tokens of the same stream ended by a half-close; nothing is left for a second
// utterance.
TEST_F(AudioE2eTest, AFlushFinalizesTheAudioTheResamplerHeldBack) {
  const std::string mulaw = Sox(ClipPath("clip_a"), "-r 8000 -t raw -e mu-law -b 8", "ul_flush");
  const std::vector<int64_t> closed = FinalTokenIds(Stream(mulaw, Mulaw8k()).responses());
  v1::StreamingRecognizeRequest flush;
  flush.mutable_control()->mutable_flush();
  StreamRun run;
  ASSERT_NO_FATAL_FAILURE(StreamThen(mulaw, Mulaw8k(), flush, /*close_must_succeed=*/true, &run));
  ASSERT_TRUE(run.status.ok()) << Describe(run.status);
  const std::vector<v1::TranscriptUpdate> finals = Finals(run);
  ASSERT_EQ(finals.size(), 1u) << "a second utterance holds audio received before the Flush";
  std::printf("flushed final: end %.4f s, audio %.4f s\n", Seconds(finals[0].result_end()),
              AudioTotal(run));
  EXPECT_TRUE(finals[0].from_flush());
  EXPECT_NEAR(Seconds(finals[0].result_end()), 3.37, 0.002);
  EXPECT_EQ(Ids(FinalTokenIds(run.responses())), Ids(closed));
}

// A stream that ends with an error is finalized first (API.md 3), the resampler's delayed samples
// included: 8 kHz mu-law, then an empty Control message (INVALID_ARGUMENT); the final still ends
// at the clip's end (3.37 s), not where the resampler's output stopped (3.32 s).
TEST_F(AudioE2eTest, AnErrorAfterAudioFinalizesTheAudioTheResamplerHeldBack) {
  const std::string mulaw = Sox(ClipPath("clip_a"), "-r 8000 -t raw -e mu-law -b 8", "ul_fail");
  v1::StreamingRecognizeRequest empty_control;
  empty_control.mutable_control();
  StreamRun run;
  // The server may end the call before the half-close.
  ASSERT_NO_FATAL_FAILURE(
      StreamThen(mulaw, Mulaw8k(), empty_control, /*close_must_succeed=*/false, &run));
  EXPECT_EQ(run.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(run.status);
  const std::vector<v1::TranscriptUpdate> finals = Finals(run);
  ASSERT_EQ(finals.size(), 1u);
  std::printf("final before the error: end %.4f s, audio %.4f s\n", Seconds(finals[0].result_end()),
              AudioTotal(run));
  EXPECT_NEAR(Seconds(finals[0].result_end()), 3.37, 0.002);
  EXPECT_NEAR(AudioTotal(run), 3.37, 0.002);
}

TEST_F(AudioE2eTest, RecognizeTakesWavAtAnyRateAndSniffsContainers) {
  const std::string a = ClipPath("clip_a");
  v1::RecognizeResponse response;
  const v1::AudioFormat sniff = Format(v1::AudioFormat::ENCODING_UNSPECIFIED, 0, 0);
  ASSERT_TRUE(Recognize(ClipWavBytes("clip_a"), sniff, &response).ok());
  ASSERT_EQ(response.results_size(), 1);
  EXPECT_EQ(Ids({response.results(0).token_ids().begin(), response.results(0).token_ids().end()}),
            Ids(OfflineTokens("clip_a")));
  for (const auto& [name, bytes] :
       {std::make_pair("wav 44.1k stereo", Sox(a, "-r 44100 -c 2 -t wav", "w44.wav")),
        std::make_pair("wav 8k f32", Sox(a, "-r 8000 -e floating-point -b 32 -t wav", "w8.wav")),
        std::make_pair("ogg opus", streaming::audio_test::OpusEnc(a, "", "r.opus")),
        std::make_pair("webm opus",
                       streaming::audio_test::ToWebm(
                           streaming::audio_test::OpusEnc(a, "", "rw.opus"), "", "rw")),
        std::make_pair("flac 22.05k", Sox(a, "-r 22050 -t flac", "r22.flac"))}) {
    response.Clear();
    const grpc::Status status = Recognize(bytes, sniff, &response);
    std::printf("%s: %s, %d results, %.4f s\n", name, Describe(status).c_str(),
                response.results_size(), Seconds(response.audio_duration()));
    EXPECT_TRUE(status.ok()) << name << ": " << Describe(status);
    EXPECT_EQ(response.results_size(), 1) << name;
  }
  const std::string wav44 = Sox(a, "-r 44100 -t wav", "m44.wav");
  grpc::Status status = Recognize(wav44, Format(v1::AudioFormat::WAV, 16000, 0), &response);
  std::printf("declared 16000 for a 44100 Hz WAV: %s\n", Describe(status).c_str());
  ExpectError(status, grpc::StatusCode::INVALID_ARGUMENT, "BAD_CONFIG");
  EXPECT_NE(status.error_message().find("says 44100 Hz"), std::string::npos);
  status = Recognize("not audio at all", sniff, &response);
  std::printf("unknown bytes: %s\n", Describe(status).c_str());
  ExpectError(status, grpc::StatusCode::INVALID_ARGUMENT, "UNSUPPORTED_ENCODING");
}

// Recognize decodes a WAV as a stream does (WavStreamDecoder): G.711 WAVs, unset sizes as piped
// writers leave them, and a partial sample at the end is an error (API.md 4). A declared rate or
// channel count that a container's header contradicts is BAD_CONFIG on that field, for every
// container: Recognize has the config and the file at once.
TEST_F(AudioE2eTest, RecognizeDecodesWavAsStreamsDoAndCallsContradictedConfigBadConfig) {
  const std::string a = ClipPath("clip_a");
  const auto ids = [](const v1::RecognizeResponse& r) {
    return r.results_size() == 1
               ? Ids({r.results(0).token_ids().begin(), r.results(0).token_ids().end()})
               : std::string("(no result)");
  };
  const v1::AudioFormat wav = Format(v1::AudioFormat::WAV, 0, 0);
  const std::string mulaw_raw = Sox(a, "-r 8000 -t raw -e mu-law", "m.ul");
  const std::string mulaw_wav = Sox(a, "-r 8000 -e mu-law -t wav", "m.wav");
  ASSERT_FALSE(mulaw_raw.empty());
  ASSERT_GT(mulaw_wav.size(), mulaw_raw.size());  // the premise: one set of samples, two wrappings
  ASSERT_EQ(mulaw_wav.substr(mulaw_wav.size() - mulaw_raw.size()), mulaw_raw);
  v1::RecognizeResponse raw_response;
  ASSERT_TRUE(Recognize(mulaw_raw, Mulaw8k(), &raw_response).ok());
  v1::RecognizeResponse response;
  grpc::Status status = Recognize(mulaw_wav, wav, &response);
  std::printf("mu-law WAV: %s, tokens %s\n", Describe(status).c_str(), ids(response).c_str());
  ASSERT_TRUE(status.ok()) << Describe(status);
  EXPECT_EQ(ids(response), ids(raw_response));  // the same samples as MULAW declared

  std::string unset = ClipWavBytes("clip_a");
  ASSERT_EQ(unset.substr(36, 4), "data");
  unset.replace(4, 4, std::string(4, '\xff'));  // RIFF and data sizes as a pipe leaves them
  unset.replace(40, 4, std::string(4, '\xff'));
  response.Clear();
  status = Recognize(unset, wav, &response);
  std::printf("WAV with unset sizes: %s\n", Describe(status).c_str());
  EXPECT_EQ(ids(response), Ids(OfflineTokens("clip_a")));

  std::string odd = unset + "x";  // half a 16-bit sample at the end
  status = Recognize(odd, wav, &response);
  std::printf("WAV ending in half a sample: %s\n", Describe(status).c_str());
  ExpectError(status, grpc::StatusCode::INVALID_ARGUMENT, "AUDIO_DECODE_ERROR");
  EXPECT_NE(status.error_message().find("incomplete 2-byte sample frame"), std::string::npos);
  status = Recognize(Sox(a, "-r 96000 -t wav", "r96.wav"), wav, &response);
  std::printf("WAV at 96 kHz: %s\n", Describe(status).c_str());
  ExpectError(status, grpc::StatusCode::INVALID_ARGUMENT, "UNSUPPORTED_ENCODING");
  EXPECT_NE(status.error_message().find("96000 Hz is outside 8000 to 48000"), std::string::npos);

  const std::string opus = streaming::audio_test::OpusEnc(a, "", "d.opus");
  const std::string webm = streaming::audio_test::ToWebm(opus, "", "d");
  const std::string flac = Sox(a, "-t flac", "d.flac");
  const std::string wav16 = ClipWavBytes("clip_a");
  using F = v1::AudioFormat;
  for (const auto& [name, bytes, format, field] :
       {std::make_tuple("WAV, rate", wav16, Format(F::WAV, 22050, 0), "sample_rate_hz"),
        std::make_tuple("WAV, channels", wav16, Format(F::WAV, 0, 2), "channels"),
        std::make_tuple("Ogg Opus, rate", opus, Format(F::OGG_OPUS, 22050, 0), "sample_rate_hz"),
        std::make_tuple("WebM Opus, channels", webm, Format(F::WEBM_OPUS, 0, 2), "channels"),
        std::make_tuple("FLAC, rate", flac, Format(F::FLAC, 44100, 0), "sample_rate_hz"),
        std::make_tuple("FLAC sniffed, channels", flac, Format(F::ENCODING_UNSPECIFIED, 0, 2),
                        "channels")}) {
    status = Recognize(bytes, format, &response);
    std::printf("declared %s contradicted: %s\n", name, Describe(status).c_str());
    ExpectError(status, grpc::StatusCode::INVALID_ARGUMENT, "BAD_CONFIG");
    EXPECT_EQ(ParseDetails(status).fields,
              std::vector<std::string>{absl::StrCat("config.audio.", field)})
        << name;
  }
}

TEST_F(AudioE2eTest, GetCapabilitiesListsTheEncodings) {
  v1::Capabilities capabilities;
  grpc::ClientContext context;
  ASSERT_TRUE(server_->stub()->GetCapabilities(&context, {}, &capabilities).ok());
  std::string listed;
  for (int e : capabilities.encodings())
    listed += v1::AudioFormat::Encoding_Name(static_cast<v1::AudioFormat::Encoding>(e)) + " ";
  std::printf("encodings: %s\n", listed.c_str());
  EXPECT_EQ(listed, "PCM_S16LE PCM_F32LE MULAW ALAW OGG_OPUS WEBM_OPUS FLAC OPUS WAV ");
  EXPECT_EQ(capabilities.min_sample_rate_hz(), 8000);
  EXPECT_EQ(capabilities.max_sample_rate_hz(), 48000);
}

}  // namespace
}  // namespace speechllm::itest
