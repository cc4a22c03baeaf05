// AudioDecoder over the golden clips converted at test time with sox and opusenc (label unit):
// every encoding and rate decoded in random chunk splits gives exactly the samples of a one-shot
// decode; float32 and two identical channels give exactly the 16-bit mono samples; G.711 code
// words match sox's tables; PCM framing errors and non-finite floats are INVALID_ARGUMENT.
#include "streaming/audio_decoder.h"

#include <cstring>
#include <limits>

#include "engine/io/wav_reader.h"
#include "gtest/gtest.h"
#include "streaming/g711_decoder.h"
#include "tests/unit/streaming/audio_decoder_test_util.h"

namespace speechllm::streaming {
namespace {

using audio_test::ClipPath;
using audio_test::DecodeChunks;
using audio_test::FirstDifference;
using audio_test::RandomSplit;
using audio_test::Sox;

std::vector<float> Clip(const std::string& name) {
  auto samples = engine::ReadMonoWavFile(ClipPath(name), 16000);
  EXPECT_TRUE(samples.ok()) << samples.status();
  return samples.ok() ? *samples : std::vector<float>();
}

struct SplitCase {
  std::string name;
  std::string sox_inputs;  // sox input files (and options); empty for opusenc cases
  std::string sox_output;  // sox output options
  std::string opusenc_args;
  AudioFormatSpec format;
  double min_band_snr_db;  // vs the 16 kHz original in 100-3400 Hz (all cases keep that band)
};

void PrintTo(const SplitCase& c, std::ostream* os) { *os << c.name; }

std::string Bytes(const SplitCase& c) {
  if (!c.opusenc_args.empty() || c.format.encoding == AudioEncoding::kOggOpus) {
    std::string wav = ClipPath("clip_a");
    if (!c.sox_inputs.empty()) {  // a converted WAV first (rate, channels)
      wav = audio_test::TempPath(c.name + ".wav");
      std::ofstream(wav, std::ios::binary) << Sox(c.sox_inputs, c.sox_output, c.name + "_in.wav");
    }
    std::string bytes = audio_test::OpusEnc(wav, c.opusenc_args, c.name + ".opus");
    if (wav != ClipPath("clip_a")) std::remove(wav.c_str());
    return bytes;
  }
  return Sox(c.sox_inputs, c.sox_output, c.name + ".raw");
}

class SplitTest : public ::testing::TestWithParam<SplitCase> {};

// The decoded 16 kHz samples of random chunk splits equal a one-shot decode bit for bit.
TEST_P(SplitTest, RandomSplitsEqualOneShotDecode) {
  const SplitCase& c = GetParam();
  const std::string bytes = Bytes(c);
  ASSERT_FALSE(bytes.empty());
  auto whole = DecodeChunks(c.format, bytes);
  ASSERT_TRUE(whole.ok()) << whole.status();
  const std::vector<float> original = Clip("clip_a");
  // Length: the clip's duration at 16 kHz (resampler and Opus end trimming keep it).
  EXPECT_NEAR(static_cast<double>(whole->size()), static_cast<double>(original.size()), 4.0)
      << c.name;
  const double snr = audio_test::BandSnrDb(*whole, original, 16000, 100, 3400);
  std::printf("%-18s %7zu bytes -> %6zu samples at 16 kHz; SNR vs original (100-3400 Hz) %.1f dB\n",
              c.name.c_str(), bytes.size(), whole->size(), snr);
  EXPECT_GE(snr, c.min_band_snr_db) << c.name;
  for (uint32_t seed : {1u, 2u, 3u, 4u, 5u}) {
    const std::vector<size_t> chunks = RandomSplit(bytes.size(), seed, seed % 2 ? 700 : 5000);
    auto split = DecodeChunks(c.format, bytes, chunks);
    ASSERT_TRUE(split.ok()) << split.status();
    EXPECT_EQ(FirstDifference(*split, *whole), -1)
        << c.name << " seed " << seed << " (" << chunks.size() << " chunks): " << split->size()
        << " vs " << whole->size() << " samples";
  }
}

constexpr char kS16[] = "-t raw -e signed-integer -b 16 -L";
const AudioFormatSpec kMono16{AudioEncoding::kPcmS16le, 16000, 1};

INSTANTIATE_TEST_SUITE_P(
    Formats, SplitTest,
    ::testing::Values(
        SplitCase{"pcm_s16_16k", ClipPath("clip_a"), kS16, "", kMono16, 100},
        SplitCase{"pcm_s16_8k",
                  ClipPath("clip_a"),
                  absl::StrCat("-r 8000 ", kS16),
                  "",
                  {AudioEncoding::kPcmS16le, 8000, 1},
                  60},
        SplitCase{"pcm_s16_22050",
                  ClipPath("clip_a"),
                  absl::StrCat("-r 22050 ", kS16),
                  "",
                  {AudioEncoding::kPcmS16le, 22050, 1},
                  60},
        SplitCase{"pcm_s16_44100",
                  ClipPath("clip_a"),
                  absl::StrCat("-r 44100 ", kS16),
                  "",
                  {AudioEncoding::kPcmS16le, 44100, 1},
                  60},
        SplitCase{"pcm_s16_48k",
                  ClipPath("clip_a"),
                  absl::StrCat("-r 48000 ", kS16),
                  "",
                  {AudioEncoding::kPcmS16le, 48000, 1},
                  60},
        SplitCase{"pcm_f32_44100",
                  ClipPath("clip_a"),
                  "-r 44100 -t raw -e floating-point -b 32 -L",
                  "",
                  {AudioEncoding::kPcmF32le, 44100, 1},
                  60},
        SplitCase{"pcm_s16_stereo_48k",
                  ClipPath("clip_a") + " " + ClipPath("clip_a"),
                  absl::StrCat("-M -r 48000 ", kS16),
                  "",
                  {AudioEncoding::kPcmS16le, 48000, 2},
                  60},
        SplitCase{"mulaw_8k",
                  ClipPath("clip_a"),
                  "-r 8000 -t raw -e mu-law -b 8",
                  "",
                  {AudioEncoding::kMulaw, 8000, 1},
                  30},
        SplitCase{"alaw_8k",
                  ClipPath("clip_a"),
                  "-r 8000 -t raw -e a-law -b 8",
                  "",
                  {AudioEncoding::kAlaw, 8000, 1},
                  30},
        SplitCase{"mulaw_stereo_8k",
                  ClipPath("clip_a") + " " + ClipPath("clip_a"),
                  "-M -r 8000 -t raw -e mu-law -b 8",
                  "",
                  {AudioEncoding::kMulaw, 8000, 2},
                  30},
        SplitCase{"ogg_opus_16k", "", "", "--bitrate 32", {AudioEncoding::kOggOpus, 0, 0}, 15},
        SplitCase{"ogg_opus_48k_st",
                  ClipPath("clip_a") + " " + ClipPath("clip_a"),
                  "-M -r 48000 -b 16 -t wav",
                  "--bitrate 64",
                  {AudioEncoding::kOggOpus, 48000, 2},
                  15}),
    [](const ::testing::TestParamInfo<SplitCase>& info) { return info.param.name; });

// Float32 of the same values, and two identical channels, give the 16-bit mono samples exactly;
// so does a 48 kHz stream in stereo with identical channels vs. mono (the same resampler input).
TEST(AudioDecoderTest, FloatAndIdenticalStereoEqualMonoS16) {
  const std::string mono = Sox(ClipPath("clip_a"), kS16, "mono.raw");
  ASSERT_FALSE(mono.empty());
  std::string stereo, f32, f32_stereo;
  for (size_t i = 0; i + 1 < mono.size(); i += 2) {
    int16_t s;
    std::memcpy(&s, mono.data() + i, 2);
    const float f = s / 32768.0f;
    const std::string fb(reinterpret_cast<const char*>(&f), 4);
    stereo += mono.substr(i, 2) + mono.substr(i, 2);
    f32 += fb;
    f32_stereo += fb + fb;
  }
  auto expected = DecodeChunks(kMono16, mono);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(FirstDifference(*expected, Clip("clip_a")), -1);
  for (const auto& [name, format, bytes] :
       {std::make_tuple("s16 stereo", AudioFormatSpec{AudioEncoding::kPcmS16le, 16000, 2}, stereo),
        std::make_tuple("f32 mono", AudioFormatSpec{AudioEncoding::kPcmF32le, 16000, 1}, f32),
        std::make_tuple("f32 stereo", AudioFormatSpec{AudioEncoding::kPcmF32le, 16000, 2},
                        f32_stereo)}) {
    auto got = DecodeChunks(format, bytes, RandomSplit(bytes.size(), 7));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(FirstDifference(*got, *expected), -1) << name;
  }
  const std::string mono48 = Sox(ClipPath("clip_a"), absl::StrCat("-r 48000 ", kS16), "m48.raw");
  std::string stereo48;
  for (size_t i = 0; i + 1 < mono48.size(); i += 2)
    stereo48 += mono48.substr(i, 2) + mono48.substr(i, 2);
  auto m48 = DecodeChunks({AudioEncoding::kPcmS16le, 48000, 1}, mono48);
  auto s48 = DecodeChunks({AudioEncoding::kPcmS16le, 48000, 2}, stereo48);
  ASSERT_TRUE(m48.ok() && s48.ok());
  EXPECT_EQ(FirstDifference(*s48, *m48), -1);
}

// Every G.711 code word decodes to the value sox gives it (sox's mu-law/A-law expansion).
TEST(AudioDecoderTest, G711CodeWordsMatchSox) {
  const std::string codes_path = audio_test::TempPath("codes.raw");
  {
    std::ofstream codes(codes_path, std::ios::binary);
    for (int c = 0; c < 256; ++c) codes.put(static_cast<char>(c));
  }
  for (const auto& [encoding, sox_name] : {std::make_pair(AudioEncoding::kMulaw, "mu-law"),
                                           std::make_pair(AudioEncoding::kAlaw, "a-law")}) {
    const std::string linear =
        Sox(absl::StrCat("-t raw -r 8000 -c 1 -e ", sox_name, " -b 8 ", codes_path), kS16,
            "linear.raw");
    ASSERT_EQ(linear.size(), 512u);
    int mismatches = 0;
    for (int c = 0; c < 256; ++c) {
      int16_t expected;
      std::memcpy(&expected, linear.data() + 2 * c, 2);
      const int16_t got = encoding == AudioEncoding::kMulaw ? MulawToLinear(static_cast<uint8_t>(c))
                                                            : AlawToLinear(static_cast<uint8_t>(c));
      if (got != expected && ++mismatches < 5)
        ADD_FAILURE() << sox_name << " code " << c << ": " << got << " vs sox " << expected;
    }
    std::printf("%s: %d of 256 code words differ from sox\n", sox_name, mismatches);
    EXPECT_EQ(mismatches, 0);
  }
  std::remove(codes_path.c_str());
}

TEST(AudioDecoderTest, StereoIsTheMeanOfTheChannels) {
  const int16_t frames[] = {1000, -3000, 32767, 32767, -32768, 0};
  auto got =
      DecodeChunks({AudioEncoding::kPcmS16le, 16000, 2},
                   std::string(reinterpret_cast<const char*>(frames), sizeof(frames)), {3, 4, 5});
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, (std::vector<float>{-1000 / 32768.0f, 32767 / 32768.0f, -0.5f}));
}

TEST(AudioDecoderTest, OddByteCountOfS16IsAnErrorAtFinish) {
  auto decoder = AudioDecoder::Create(kMono16, 16000);
  ASSERT_TRUE(decoder.ok());
  std::vector<float> out;
  ASSERT_TRUE((*decoder)->Decode(std::string("\x01\x02\x03", 3), &out, nullptr).ok());
  EXPECT_EQ(out.size(), 1u);
  const absl::Status status = (*decoder)->Finish(&out);
  std::printf("odd bytes: %s\n", status.ToString().c_str());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("1 bytes of an incomplete 2-byte sample frame"),
            std::string::npos);
  EXPECT_FALSE(IsNonFiniteAudioError(status));
}

TEST(AudioDecoderTest, NonFiniteFloatsAreErrorsAndLargeOnesAreClipped) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    std::string bytes(12, '\0');
    std::memcpy(&bytes[8], &bad, 4);  // the third sample; split inside it
    auto got = DecodeChunks({AudioEncoding::kPcmF32le, 44100, 1}, bytes, {9, 3});
    std::printf("non-finite: %s\n", got.status().ToString().c_str());
    ASSERT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_TRUE(IsNonFiniteAudioError(got.status()));
    EXPECT_NE(got.status().message().find("sample frame 2"), std::string::npos);
  }
  const float values[] = {1.5f, -2.0f, 0.5f};
  int64_t clipped = 0;
  auto got =
      DecodeChunks({AudioEncoding::kPcmF32le, 16000, 1},
                   std::string(reinterpret_cast<const char*>(values), 12), {}, 16000, &clipped);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(clipped, 2);
  EXPECT_EQ(*got, (std::vector<float>{1.0f, -1.0f, 0.5f}));
}

// PCM and G.711 check the bound before decoding: 64 MiB of 8 kHz G.711 would otherwise become
// 134 M float samples (over 1 GB with the resampler's copies) before the length check.
TEST(AudioDecoderTest, RawDecodersRefuseACallPastTheirSampleLimitBeforeDecodingIt) {
  struct Case {
    AudioFormatSpec format;
    int bytes_per_frame;
  };
  const int64_t limit = 16000;  // 1 s at the 16 kHz output
  for (const Case& c :
       {Case{kMono16, 2}, Case{{AudioEncoding::kPcmF32le, 16000, 2}, 8},
        Case{{AudioEncoding::kMulaw, 8000, 1}, 1}, Case{{AudioEncoding::kAlaw, 8000, 3}, 3},
        Case{{AudioEncoding::kPcmS16le, 48000, 1}, 2}}) {
    // The frames of 1 s at the declared rate fit; one more is refused, with nothing appended.
    const int64_t frames = c.format.sample_rate_hz;
    for (const int64_t n : {frames, frames + 1}) {
      auto decoder = AudioDecoder::Create(c.format, 16000);
      ASSERT_TRUE(decoder.ok());
      (*decoder)->LimitSamplesPerDecode(limit);
      std::vector<float> out;
      const absl::Status status =
          (*decoder)->Decode(std::string(n * c.bytes_per_frame, '\x10'), &out, nullptr);
      if (n == frames) {
        EXPECT_TRUE(status.ok()) << status;
        continue;
      }
      std::printf("%d Hz, %d-byte frames, %lld frames: %s\n", c.format.sample_rate_hz,
                  c.bytes_per_frame, static_cast<long long>(n), status.ToString().c_str());
      EXPECT_TRUE(IsAudioTooLongError(status)) << status;
      EXPECT_TRUE(out.empty()) << out.size() << " samples decoded before the refusal";
    }
  }
}

// A malformed sample in the middle of a call: the samples before it still come out, the
// resampler's delayed tail included (the server gives them to the finals before it fails).
TEST(AudioDecoderTest, TheSamplesBeforeAMalformedOneComeOutOfTheResampler) {
  std::vector<float> values(4410, 0.25f);  // 100 ms at 44.1 kHz
  values.push_back(std::numeric_limits<float>::quiet_NaN());
  auto decoder = AudioDecoder::Create({AudioEncoding::kPcmF32le, 44100, 1}, 16000);
  ASSERT_TRUE(decoder.ok());
  std::vector<float> out;
  const absl::Status status = (*decoder)->Decode(
      std::string(reinterpret_cast<const char*>(values.data()), values.size() * 4), &out, nullptr);
  std::printf("%s after %zu samples at 16 kHz\n", status.ToString().c_str(), out.size());
  EXPECT_TRUE(IsNonFiniteAudioError(status)) << status;
  EXPECT_NEAR(static_cast<double>(out.size()), 1600.0, 1.0);
  ASSERT_GT(out.size(), 800u);
  EXPECT_NEAR(out[800], 0.25f, 1e-3f);
}

TEST(AudioDecoderTest, CreateRejectsRatesAndChannelsOutOfRange) {
  for (const AudioFormatSpec& bad : {AudioFormatSpec{AudioEncoding::kPcmS16le, 7999, 1},
                                     AudioFormatSpec{AudioEncoding::kPcmS16le, 48001, 1},
                                     AudioFormatSpec{AudioEncoding::kPcmF32le, 16000, 0},
                                     AudioFormatSpec{AudioEncoding::kMulaw, 8000, 9},
                                     AudioFormatSpec{AudioEncoding::kOggOpus, 0, 9},
                                     AudioFormatSpec{AudioEncoding::kOpusPacket, 0, 3}}) {
    auto decoder = AudioDecoder::Create(bad, 16000);
    EXPECT_EQ(decoder.status().code(), absl::StatusCode::kInvalidArgument)
        << bad.sample_rate_hz << " Hz, " << bad.channels << " channels";
  }
  auto passthrough = AudioDecoder::Create(kMono16, 16000);
  ASSERT_TRUE(passthrough.ok());
  EXPECT_FALSE((*passthrough)->ChunksArePackets());
}

}  // namespace
}  // namespace speechllm::streaming
