// Malformed audio end to end (label integration): a truncated Ogg page, a corrupt Opus packet
// behind a valid CRC, a corrupted page, a truncated WebM, a WebM track not in Opus, Ogg sent as
// WebM, a truncated or corrupted FLAC, a truncated WAV header, a WAV at 96 kHz, an odd byte count
// for 16-bit PCM, NaN and infinite floats and undeclared sample rates each end their stream with
// INVALID_ARGUMENT saying what was wrong; unsupported encodings and rates are refused at the
// config; a healthy stream on the same server meanwhile finishes with the offline tokens; a stream
// without audio ends OK in every encoding. Also the
// client CLI with Ogg Opus, WebM and FLAC files, containers piped to stdin, and `--encode opus`
// from a WAV and from stdin.
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/io/wav_reader.h"
#include "gtest/gtest.h"
#include "tests/integration/audio/audio_e2e_util.h"

namespace speechllm::itest {
namespace {

using streaming::audio_test::OpusEnc;
using streaming::audio_test::Sox;
using F = v1::AudioFormat;

class AudioErrorsE2eTest : public SharedServerTest<AudioErrorsE2eTest> {};

std::string Floats(size_t n, size_t bad_at, float bad) {
  std::vector<float> values(n, 0.01f);
  values[bad_at] = bad;
  return std::string(reinterpret_cast<const char*>(values.data()), n * 4);
}

struct BadCase {
  std::string name;
  std::string bytes;
  v1::AudioFormat format;
  std::string message;  // expected in the status message
  std::string reason;   // expected ErrorInfo.reason; "" = printed only (see the report)
};

// The headers of `opus`, then 3,000 Opus packets of two bytes (RFC 6716 3.2.5: code 3, six empty
// 20 ms CELT frames), each of which decodes to 120 ms: about 6 KiB that hold 360 s of audio.
std::string ExpandingOpus(const std::string& opus) {
  return streaming::audio_test::Remux(opus, [](std::vector<std::string>* packets) {
    packets->resize(2);
    for (int i = 0; i < 3000; ++i) packets->emplace_back("\xFB\x06", 2);
  });
}

TEST_F(AudioErrorsE2eTest, OpusThatExpandsPastTheLimitIsRefusedBeforeItIsAllDecoded) {
  const std::string opus = OpusEnc(ClipPath("clip_a"), "", "a.opus");
  ASSERT_FALSE(opus.empty());
  const std::string expanding = ExpandingOpus(opus);
  v1::RecognizeRequest request;
  *request.mutable_config()->mutable_audio() = Format(F::OGG_OPUS, 0, 0);
  request.set_audio(expanding);
  v1::RecognizeResponse response;
  grpc::ClientContext context;
  const grpc::Status status = server_->stub()->Recognize(&context, request, &response);
  std::printf("Recognize of %zu bytes of expanding Opus -> %s\n", expanding.size(),
              Describe(status).c_str());
  ExpectError(status, grpc::StatusCode::INVALID_ARGUMENT, "AUDIO_TOO_LONG");
  EXPECT_NE(status.error_message().find("max_recognize_audio"), std::string::npos);
  // Streamed in one AudioChunk, it passes the 120 s one chunk may decode to.
  const StreamRun run = StreamOn(server_->stub(), expanding, Format(F::OGG_OPUS, 0, 0), 16384);
  std::printf("one AudioChunk of it -> %s\n", Describe(run.status).c_str());
  ExpectError(run.status, grpc::StatusCode::INVALID_ARGUMENT, "CHUNK_TOO_LARGE");
  EXPECT_NE(run.status.error_message().find("decode to more than"), std::string::npos);
}

// Raw PCM, G.711 and WAV hold at most a few samples per byte, but 64 MiB of 8 kHz G.711 still
// held 8,400 s (134 M floats, 1.3 GB per call): their length is now checked before decoding.
TEST_F(AudioErrorsE2eTest, RecognizeRefusesLongRawAndWavAudioBeforeDecodingIt) {
  const int64_t frames = 301 * 8000;  // 301 s at 8 kHz: past the default 300 s
  const std::vector<std::pair<std::string, v1::RecognizeRequest>> requests = [&] {
    std::vector<std::pair<std::string, v1::RecognizeRequest>> r(4);
    r[0].first = "MULAW 8 kHz";
    *r[0].second.mutable_config()->mutable_audio() = Format(F::MULAW, 8000, 1);
    r[0].second.set_audio(std::string(frames, '\xff'));
    r[1].first = "PCM_S16LE 8 kHz stereo";
    *r[1].second.mutable_config()->mutable_audio() = Format(F::PCM_S16LE, 8000, 2);
    r[1].second.set_audio(std::string(frames * 4, '\0'));
    r[2].first = "WAV 8 kHz";
    *r[2].second.mutable_config()->mutable_audio() = Format(F::WAV, 0, 0);
    r[2].second.set_audio(engine::EncodeWav16(std::vector<float>(frames, 0.0f), 8000, 1));
    // 8-bit samples are converted to floats (4 bytes each): bounded before that conversion.
    r[3].first = "WAV 8 kHz 8-bit";
    *r[3].second.mutable_config()->mutable_audio() = Format(F::WAV, 0, 0);
    std::string wav8 = r[2].second.audio().substr(0, 44);  // the 16-bit header, rewritten
    const uint32_t data_bytes = static_cast<uint32_t>(frames), riff_bytes = data_bytes + 36;
    std::memcpy(&wav8[4], &riff_bytes, 4);
    const uint16_t block_align = 1, bits = 8;
    const uint32_t byte_rate = 8000;
    std::memcpy(&wav8[28], &byte_rate, 4);
    std::memcpy(&wav8[32], &block_align, 2);
    std::memcpy(&wav8[34], &bits, 2);
    std::memcpy(&wav8[40], &data_bytes, 4);
    r[3].second.set_audio(wav8 + std::string(frames, '\x80'));
    return r;
  }();
  for (const auto& [name, request] : requests) {
    v1::RecognizeResponse response;
    grpc::ClientContext context;
    const grpc::Status status = server_->stub()->Recognize(&context, request, &response);
    std::printf("%-22s %8zu bytes -> %s\n", name.c_str(), request.audio().size(),
                Describe(status).c_str());
    ExpectError(status, grpc::StatusCode::INVALID_ARGUMENT, "AUDIO_TOO_LONG");
    // "decodes to more than": refused by the decoder's bound, not after decoding it all.
    EXPECT_NE(status.error_message().find("decodes to more than max_recognize_audio"),
              std::string::npos)
        << name << ": " << status.error_message();
  }
}

// A NaN in the last AudioChunk ends the stream, but the audio before it in that chunk is still
// transcribed (finals first, API.md 3): the final equals the whole clip's offline tokens.
TEST_F(AudioErrorsE2eTest, TheAudioBeforeAMalformedSampleInItsChunkIsTranscribed) {
  const std::string s16 = ClipPcm("clip_a");
  std::string f32;
  for (size_t i = 0; i + 1 < s16.size(); i += 2) {
    int16_t v;
    std::memcpy(&v, s16.data() + i, 2);
    const float f = v / 32768.0f;
    f32.append(reinterpret_cast<const char*>(&f), 4);
  }
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const size_t last_chunk_bytes = 8000 * 4;  // the clip's last 0.5 s, then the NaN
  ASSERT_GT(f32.size(), last_chunk_bytes);
  client::StreamingClientOptions options;
  options.realtime = false;
  options.config = ExactConfig(false, v1::ResultOptions::NONE);
  *options.config.mutable_audio() = Format(F::PCM_F32LE, 16000, 1);
  client::StreamingClient client(server_->stub(), options);
  ASSERT_TRUE(client.Start().ok());
  const size_t head = f32.size() - last_chunk_bytes;
  for (size_t at = 0; at < head; at += 32000) {
    v1::StreamingRecognizeRequest request;
    request.mutable_audio()->set_data(f32.substr(at, std::min<size_t>(32000, head - at)));
    ASSERT_TRUE(client.SendRaw(std::move(request)).ok());
  }
  v1::StreamingRecognizeRequest last;
  last.mutable_audio()->set_data(f32.substr(head) +
                                 std::string(reinterpret_cast<const char*>(&nan), 4));
  ASSERT_TRUE(client.SendRaw(std::move(last)).ok());
  client.CloseSend().IgnoreError();
  const StreamRun run = Collect(&client, absl::Seconds(60));
  const std::vector<int64_t> final_ids = FinalTokenIds(run.responses());
  std::printf("%s; final %s\n", Describe(run.status).c_str(), Ids(final_ids).c_str());
  ExpectError(run.status, grpc::StatusCode::INVALID_ARGUMENT, "NON_FINITE_AUDIO");
  EXPECT_EQ(final_ids, OfflineTokens("clip_a"));
}

TEST_F(AudioErrorsE2eTest, MalformedAudioIsInvalidArgumentWhileAHealthyStreamFinishes) {
  const std::string opus = OpusEnc(ClipPath("clip_a"), "", "a.opus");
  ASSERT_FALSE(opus.empty());
  const std::vector<size_t> pages = [&] {
    std::vector<size_t> starts;
    for (size_t at = opus.find("OggS"); at != std::string::npos; at = opus.find("OggS", at + 1))
      starts.push_back(at);
    return starts;
  }();
  ASSERT_GT(pages.size(), 4u);
  std::string crc = opus;
  crc[pages[3] + 40] ^= 0x10;
  const std::string corrupt_packet =
      streaming::audio_test::Remux(opus, [](std::vector<std::string>* packets) {
        (*packets)[10] = std::string("\x03\x00", 2);  // code 3, zero frames (RFC 6716 3.2.5)
      });
  const std::string webm = streaming::audio_test::ToWebm(opus, "", "e.webm");
  ASSERT_FALSE(webm.empty());
  std::string vorbis_webm = webm;  // the CodecID's length kept
  vorbis_webm.replace(vorbis_webm.find("A_OPUS"), 6, "A_VORB");
  const std::string flac = Sox(ClipPath("clip_a"), "-t flac", "e.flac");
  ASSERT_FALSE(flac.empty());
  std::string corrupt_flac = flac;
  corrupt_flac[flac.size() / 2] ^= 0x20;
  const std::vector<BadCase> cases = {
      {"odd byte count", ClipPcm("clip_a").substr(0, 3201), Format(F::PCM_S16LE, 16000, 1),
       "1 bytes of an incomplete 2-byte sample frame", "AUDIO_DECODE_ERROR"},
      {"NaN float", Floats(4000, 2500, std::numeric_limits<float>::quiet_NaN()),
       Format(F::PCM_F32LE, 16000, 1), "non-finite sample (nan) in sample frame 2500",
       "NON_FINITE_AUDIO"},
      {"infinite float", Floats(4000, 10, std::numeric_limits<float>::infinity()),
       Format(F::PCM_F32LE, 44100, 1), "non-finite sample (inf)", "NON_FINITE_AUDIO"},
      {"truncated Ogg page", opus.substr(0, opus.size() - 7), Format(F::OGG_OPUS, 0, 0),
       "ends inside a page", "AUDIO_DECODE_ERROR"},
      {"corrupted Ogg page", crc, Format(F::OGG_OPUS, 0, 0), "CRC mismatch", ""},
      {"corrupt Opus packet", corrupt_packet, Format(F::OGG_OPUS, 0, 0),
       "corrupt Opus packet 9 (2 bytes)", ""},
      {"undeclared rate", opus, Format(F::OGG_OPUS, 22050, 0),
       "input sample rate is 16000 Hz but the config declared audio.sample_rate_hz 22050", ""},
      {"truncated WebM", webm.substr(0, webm.size() / 2), Format(F::WEBM_OPUS, 0, 0),
       "the stream ends inside an element", "AUDIO_DECODE_ERROR"},
      {"WebM not Opus", vorbis_webm, Format(F::WEBM_OPUS, 0, 0),
       "the audio track's codec is A_VORB; only Opus (A_OPUS) is decoded", "UNSUPPORTED_ENCODING"},
      {"Ogg sent as WebM", opus, Format(F::WEBM_OPUS, 0, 0), "does not start with an EBML header",
       "AUDIO_DECODE_ERROR"},
      {"truncated FLAC", flac.substr(0, flac.size() - 100), Format(F::FLAC, 0, 0),
       "the stream ends inside a frame", "AUDIO_DECODE_ERROR"},
      {"corrupted FLAC", corrupt_flac, Format(F::FLAC, 0, 0), "a frame whose CRC does not match",
       "AUDIO_DECODE_ERROR"},
      {"FLAC rate mismatch", flac, Format(F::FLAC, 96000, 0),
       "STREAMINFO says 16000 Hz but the config declared audio.sample_rate_hz 96000",
       "AUDIO_DECODE_ERROR"},
      {"FLAC rate 200 kHz", "", Format(F::FLAC, 200000, 0),
       "200000 is outside 8000 to 192000 for FLAC", "BAD_CONFIG"},
      {"truncated WAV header", ClipWavBytes("clip_a").substr(0, 30), Format(F::WAV, 0, 0),
       "the stream ended before its data chunk", "AUDIO_DECODE_ERROR"},
      {"WAV at 96 kHz", Sox(ClipPath("clip_a"), "-r 96000 -t wav", "e96.wav"), Format(F::WAV, 0, 0),
       "96000 Hz is outside 8000 to 48000", "UNSUPPORTED_ENCODING"},
      {"undeclared raw PCM", ClipPcm("clip_a").substr(0, 3200),
       Format(F::ENCODING_UNSPECIFIED, 0, 0), "declare the encoding", "UNSUPPORTED_ENCODING"},
      {"PCM rate 96000", "", Format(F::PCM_S16LE, 96000, 1), "96000 is outside 8000 to 48000",
       "BAD_CONFIG"},
      {"PCM rate unset", "", Format(F::PCM_F32LE, 0, 1), "must be set for raw PCM", "BAD_CONFIG"},
      {"9 channels", "", Format(F::MULAW, 8000, 9), "9 is outside 1 to 8", "BAD_CONFIG"},
  };
  HealthyStream healthy(server_->stub());
  for (const BadCase& c : cases) {
    const StreamRun run = StreamOn(server_->stub(), c.bytes, c.format, 3000);
    std::printf("%-20s -> %s\n", c.name.c_str(), Describe(run.status).c_str());
    EXPECT_EQ(run.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_NE(run.status.error_message().find(c.message), std::string::npos)
        << c.name << ": " << run.status.error_message();
    if (!c.reason.empty()) {
      EXPECT_EQ(ParseDetails(run.status).reason, c.reason) << c.name;
    }
  }
  healthy.Finish("malformed audio on other streams");
}

// A stream that ends before any audio came ends OK in every encoding (README): a push-to-talk
// button released before the browser's MediaRecorder gave its first chunk. The containers'
// decoders used to call that an input without a page or header (AUDIO_DECODE_ERROR).
TEST_F(AudioErrorsE2eTest, AStreamWithoutAudioEndsOkInEveryEncoding) {
  for (const v1::AudioFormat& format :
       {Format(F::OGG_OPUS, 0, 0), Format(F::WEBM_OPUS, 0, 0), Format(F::FLAC, 0, 0),
        Format(F::WAV, 0, 0), Format(F::ENCODING_UNSPECIFIED, 0, 0), Format(F::PCM_S16LE, 16000, 1),
        Format(F::MULAW, 8000, 1)}) {
    const StreamRun run = StreamOn(server_->stub(), "", format, 3000);
    const std::string name = F::Encoding_Name(format.encoding());
    std::printf("%-20s no audio -> %s\n", name.c_str(), Describe(run.status).c_str());
    EXPECT_TRUE(run.status.ok()) << name << ": " << Describe(run.status);
    const auto responses = run.responses();
    ASSERT_FALSE(responses.empty()) << name;
    EXPECT_TRUE(responses.back().has_summary()) << name;
  }
}

// The token ids of the client's "tokens:" line, or empty.
std::vector<std::string> ClientTokens(const ProcessResult& r) {
  const size_t at = r.out.find("tokens: ");
  if (at == std::string::npos) return {};
  const std::string line = r.out.substr(at + 8, r.out.find('\n', at) - at - 8);
  return absl::StrSplit(line, ' ', absl::SkipEmpty());
}

TEST_F(AudioErrorsE2eTest, ClientSendsContainerFilesAndEncodesOpusOnTheFly) {
  const std::string dir = ScratchDir();
  const std::string a = ClipPath("clip_a");
  WriteFile(dir + "/a.opus", OpusEnc(a, "", "c.opus"));
  WriteFile(dir + "/a.webm", streaming::audio_test::ToWebm(OpusEnc(a, "", "cw.opus"), "", "cw"));
  WriteFile(dir + "/a.flac", Sox(a, "-r 22050 -t flac", "c.flac"));
  WriteFile(dir + "/a44.wav", Sox(a, "-r 44100 -c 2 -t wav", "c44.wav"));
  WriteFile(dir + "/a48.raw", Sox(a, "-r 48000 -c 2 -t raw -e signed-integer -b 16 -L", "c48"));
  const std::vector<std::string> common = {SPEECHLLM_TEST_CLIENT_BIN,
                                           "--server=" + server_->address(),
                                           "--fast",
                                           "--no_interim",
                                           "--token_ids",
                                           "--endpointing=manual"};
  for (const auto& [name, flags, stdin_path] :
       {std::make_tuple("--file a.opus", std::vector<std::string>{"--file=" + dir + "/a.opus"},
                        std::string("/dev/null")),
        std::make_tuple("--wav 44.1k stereo --encode opus",
                        std::vector<std::string>{"--wav=" + dir + "/a44.wav", "--encode=opus"},
                        std::string("/dev/null")),
        std::make_tuple("--file a44.wav", std::vector<std::string>{"--file=" + dir + "/a44.wav"},
                        std::string("/dev/null")),
        std::make_tuple("stdin 48k stereo --encode opus",
                        std::vector<std::string>{"--stdin_pcm=48000", "--stdin_channels=2",
                                                 "--encode=opus", "--chunk_ms=40"},
                        dir + "/a48.raw"),
        std::make_tuple("stdin 48k stereo PCM",
                        std::vector<std::string>{"--stdin_pcm=48000", "--stdin_channels=2"},
                        dir + "/a48.raw"),
        std::make_tuple("--file a.webm", std::vector<std::string>{"--file=" + dir + "/a.webm"},
                        std::string("/dev/null")),
        std::make_tuple("--file a.flac", std::vector<std::string>{"--file=" + dir + "/a.flac"},
                        std::string("/dev/null")),
        std::make_tuple("--file a.flac --recognize",
                        std::vector<std::string>{"--file=" + dir + "/a.flac", "--recognize"},
                        std::string("/dev/null")),
        std::make_tuple("stdin WAV --stdin_container",
                        std::vector<std::string>{"--stdin_container"}, dir + "/a44.wav"),
        std::make_tuple("stdin WebM --stdin_container",
                        std::vector<std::string>{"--stdin_container"}, dir + "/a.webm"),
        std::make_tuple("stdin FLAC --stdin_container --recognize",
                        std::vector<std::string>{"--stdin_container", "--recognize"},
                        dir + "/a.flac"),
        std::make_tuple("--file a.opus --recognize",
                        std::vector<std::string>{"--file=" + dir + "/a.opus", "--recognize"},
                        std::string("/dev/null"))}) {
    std::vector<std::string> argv = common;
    argv.insert(argv.end(), flags.begin(), flags.end());
    const ProcessResult r = RunProcess(argv, stdin_path, absl::Seconds(60));
    const std::vector<std::string> tokens = ClientTokens(r);
    std::printf("%-34s exit %d, %zu tokens: %s\n", name, r.exit_code, tokens.size(),
                absl::StrJoin(tokens, " ").c_str());
    EXPECT_EQ(r.exit_code, 0) << name << "\n" << r.err;
    EXPECT_EQ(tokens.size(), 24u) << name << "\n" << r.out;
  }
}

}  // namespace
}  // namespace speechllm::itest
