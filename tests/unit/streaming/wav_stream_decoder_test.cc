// WAV files streamed (streaming/wav_stream_decoder.h, label unit): the clip written by sox in
// every sample format a WAV carries (PCM 8/16/24/32-bit, float 32/64-bit, mu-law) decodes, under
// any split, bit for bit as the whole file read by engine/io and resampled (what Recognize does);
// the unset data sizes of streaming writers, chunks before and after the data; a call's sample
// bound applies before conversion; unsupported formats are marked as such; malformed headers are
// INVALID_ARGUMENT naming the problem.
#include "streaming/wav_stream_decoder.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "engine/io/wav_reader.h"
#include "gtest/gtest.h"
#include "streaming/audio_decoder.h"
#include "streaming/resampler.h"
#include "tests/unit/streaming/audio_decoder_test_util.h"

namespace speechllm::streaming {
namespace {

using audio_test::ClipPath;
using audio_test::DecodeChunks;
using audio_test::ExpectInvalid;
using audio_test::FirstDifference;
using audio_test::RandomSplit;
using audio_test::Sox;

const AudioFormatSpec kWav{AudioEncoding::kWav, 0, 0};

// The whole file as Recognize reads it: engine/io's parser, the channels' mean, the resampler.
std::vector<float> Reference(const std::string& wav) {
  absl::StatusOr<engine::WavAudio> audio = engine::ParseWav(wav);
  EXPECT_TRUE(audio.ok()) << audio.status();
  if (!audio.ok()) return {};
  std::vector<float> mono = audio->Mono(), out;
  if (audio->sample_rate_hz == 16000) return mono;
  auto resampler = Resampler::Create(audio->sample_rate_hz, 16000);
  EXPECT_TRUE(resampler.ok() && (*resampler)->Process(mono, &out).ok() &&
              (*resampler)->Flush(&out).ok());
  return out;
}

void WriteLe32(std::string* bytes, size_t at, uint32_t value) {
  for (int i = 0; i < 4; ++i) (*bytes)[at + i] = static_cast<char>(value >> (8 * i));
}

TEST(WavStreamDecoderTest, EverySampleFormatDecodesAsTheWholeFile) {
  const std::string a = ClipPath("clip_a");
  const std::string aa = a + " " + a + " -M";
  for (const auto& [name, inputs, args] : {
           std::make_tuple("16-bit 16 kHz mono", a, "-b 16"),
           std::make_tuple("16-bit 44.1 kHz stereo", aa, "-r 44100 -b 16"),
           std::make_tuple("8-bit unsigned 8 kHz", a, "-r 8000 -b 8 -e unsigned-integer"),
           std::make_tuple("24-bit 48 kHz", a, "-r 48000 -b 24"),
           std::make_tuple("32-bit integer 22.05 kHz", a, "-r 22050 -b 32 -e signed-integer"),
           std::make_tuple("32-bit float stereo", aa, "-b 32 -e floating-point"),
           std::make_tuple("64-bit float", a, "-b 64 -e floating-point"),
       }) {
    const std::string wav = Sox(inputs, std::string(args) + " -t wav", "fmt.wav");
    ASSERT_FALSE(wav.empty()) << name;
    const std::vector<float> expected = Reference(wav);
    for (uint32_t seed : {0u, 1u, 2u}) {
      absl::StatusOr<std::vector<float>> got = DecodeChunks(
          kWav, wav, seed == 0 ? std::vector<size_t>{} : RandomSplit(wav.size(), seed, 700));
      ASSERT_TRUE(got.ok()) << name << ": " << got.status();
      if (seed == 2) {
        std::printf("%-26s %7zu bytes: %zu samples, first difference %lld\n", name, wav.size(),
                    got->size(), static_cast<long long>(FirstDifference(*got, expected)));
      }
      EXPECT_EQ(FirstDifference(*got, expected), -1) << name << " seed " << seed;
    }
  }
  // mu-law, which engine/io does not read: against the same bytes sent as MULAW.
  const std::string ulaw = Sox(a, "-r 8000 -e mu-law -t wav", "ulaw.wav");
  const size_t data = ulaw.find("data") + 8;
  absl::StatusOr<std::vector<float>> expected =
      DecodeChunks({AudioEncoding::kMulaw, 8000, 1}, ulaw.substr(data));
  absl::StatusOr<std::vector<float>> got = DecodeChunks(kWav, ulaw, RandomSplit(ulaw.size(), 4));
  ASSERT_TRUE(expected.ok() && got.ok()) << got.status();
  EXPECT_EQ(FirstDifference(*got, *expected), -1);
}

TEST(WavStreamDecoderTest, StreamingWritersSizesAndOtherChunks) {
  const std::string wav = Sox(ClipPath("clip_a"), "-r 44100 -b 16 -t wav", "sizes.wav");
  const std::vector<float> expected = Reference(wav);
  const size_t data = wav.find("data");
  ASSERT_NE(data, std::string::npos);
  // `arecord` to a pipe: RIFF and data sizes unset (0xFFFFFFFF), or 0 as some encoders leave them.
  for (uint32_t unset : {0xFFFFFFFFu, 0u}) {
    std::string streamed = wav;
    WriteLe32(&streamed, 4, unset);
    WriteLe32(&streamed, data + 4, unset);
    absl::StatusOr<std::vector<float>> got =
        DecodeChunks(kWav, streamed, RandomSplit(streamed.size(), 5, 300));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(FirstDifference(*got, expected), -1) << unset;
  }
  // A LIST chunk before the data (skipped, odd-sized: padded) and one after it (ignored).
  const std::string list = std::string("LIST\x05\x00\x00\x00", 8) + "INFOx" + std::string(1, '\0');
  const std::string chunks = wav.substr(0, 12) + list + wav.substr(12) + list;
  absl::StatusOr<std::vector<float>> got =
      DecodeChunks(kWav, chunks, RandomSplit(chunks.size(), 6));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(FirstDifference(*got, expected), -1);
}

// The stream cut in two at every offset of its first 100 bytes (RIFF header, chunk headers, the
// fmt chunk, the first samples), declared and sniffed: the samples are the same as from one call.
TEST(WavStreamDecoderTest, AnyCutThroughTheHeaderGivesTheSameSamples) {
  const std::string list = std::string("LIST\x03\x00\x00\x00", 8) + "abc" + std::string(1, '\0');
  const std::string wav24 = Sox(ClipPath("clip_a"), "-r 22050 -b 24 -t wav", "cut.wav");
  const std::string wav = wav24.substr(0, 12) + list + wav24.substr(12);
  absl::StatusOr<std::vector<float>> whole = DecodeChunks(kWav, wav);
  ASSERT_TRUE(whole.ok()) << whole.status();
  for (const AudioEncoding encoding : {AudioEncoding::kWav, AudioEncoding::kSniffed}) {
    for (size_t cut = 1; cut <= 100; ++cut) {
      absl::StatusOr<std::vector<float>> got =
          DecodeChunks({encoding, 0, 0}, wav, {cut, wav.size() - cut});
      ASSERT_TRUE(got.ok()) << "cut " << cut << ": " << got.status();
      ASSERT_EQ(FirstDifference(*got, *whole), -1) << "cut " << cut;
    }
  }
}

// 64-bit floats beyond +-1 (even beyond a float's range) are clamped and counted, as engine/io
// clamps them in a whole file; NaN is refused.
TEST(WavStreamDecoderTest, SixtyFourBitFloatsBeyondOneAreClamped) {
  const std::string wav = Sox(ClipPath("clip_a"), "-b 64 -e floating-point -t wav", "f64.wav");
  const size_t data = wav.find("data") + 8;
  std::string loud = wav;
  for (double value : {1e300, -3.5}) {
    const size_t at = data + 8 * (value > 0 ? 100 : 200);
    std::memcpy(&loud[at], &value, 8);
  }
  int64_t clipped = 0;
  absl::StatusOr<std::vector<float>> got =
      DecodeChunks(kWav, loud, RandomSplit(loud.size(), 8), 16000, &clipped);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(clipped, 2);
  EXPECT_EQ((*got)[100], 1.0f);
  EXPECT_EQ((*got)[200], -1.0f);
  EXPECT_EQ(FirstDifference(*got, Reference(loud)), -1);
  std::string nan = wav;
  const double not_a_number = std::nan("");
  std::memcpy(&nan[data + 8 * 300], &not_a_number, 8);
  ExpectInvalid(DecodeChunks(kWav, nan).status(), "WAV: PCM_F32LE audio holds a non-finite sample");
}

// Many empty chunks before the data: skipped in one pass, and refused past 16 MiB.
TEST(WavStreamDecoderTest, ChunksBeforeTheDataAreBounded) {
  const std::string wav = Sox(ClipPath("clip_a"), "-b 16 -t wav", "junk.wav");
  std::string junk;
  for (int i = 0; i < 8192; ++i) junk += std::string("JUNK\x00\x00\x00\x00", 8);
  const std::string padded = wav.substr(0, 12) + junk + wav.substr(12);
  absl::StatusOr<std::vector<float>> got = DecodeChunks(kWav, padded);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(FirstDifference(*got, Reference(wav)), -1);
  std::string huge = wav.substr(0, 12) + std::string("LIST\x00\x00\x00\x02", 8);  // 32 MiB
  ExpectInvalid(DecodeChunks(kWav, huge + std::string(1 << 20, 'x')).status(),
                "bytes of chunks before the data chunk");
}

// A call's sample bound (Recognize's max_recognize_audio) refuses 8-bit samples before they are
// converted to 4-byte floats: the WAV decoder's own check names them, not the float decoder's.
TEST(WavStreamDecoderTest, TheSampleBoundRefusesConvertedFormatsBeforeConverting) {
  const std::string wav8 = Sox(ClipPath("clip_a"), "-b 8 -e unsigned-integer -t wav", "u8.wav");
  absl::StatusOr<std::unique_ptr<AudioDecoder>> decoder = AudioDecoder::Create(kWav, 16000);
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  (*decoder)->LimitSamplesPerDecode(16000);  // 1 s; the clip holds 3.37 s
  std::vector<float> out;
  const absl::Status status = (*decoder)->Decode(wav8, &out, nullptr);
  std::printf("3.37 s of 8-bit WAV with a 1 s bound: %s\n", status.ToString().c_str());
  EXPECT_TRUE(IsAudioTooLongError(status)) << status;
  EXPECT_NE(status.message().find("WAV: these bytes hold 53920 sample frames"), std::string::npos)
      << status;
  EXPECT_TRUE(out.empty());
}

// Formats and rates the decoders do not take are marked so (UNSUPPORTED_ENCODING at the server);
// damaged headers are not.
TEST(WavStreamDecoderTest, UnsupportedFormatsAreMarkedAndDamagedOnesAreNot) {
  const std::string wav = Sox(ClipPath("clip_a"), "-b 16 -t wav", "mark.wav");
  std::string adpcm = wav;
  adpcm[wav.find("fmt ") + 8] = 2;  // MS ADPCM
  EXPECT_TRUE(IsUnsupportedAudioError(DecodeChunks(kWav, adpcm).status()));
  const std::string fast = Sox(ClipPath("clip_a"), "-r 96000 -t wav", "r96.wav");
  EXPECT_TRUE(IsUnsupportedAudioError(DecodeChunks(kWav, fast).status()));
  const absl::Status cut = DecodeChunks(kWav, wav.substr(0, 30)).status();
  EXPECT_FALSE(cut.ok());
  EXPECT_FALSE(IsUnsupportedAudioError(cut)) << cut;
}

TEST(WavStreamDecoderTest, MalformedHeadersAreInvalidArgument) {
  const std::string wav = Sox(ClipPath("clip_a"), "-b 16 -t wav", "bad.wav");
  const size_t fmt = wav.find("fmt ");
  const size_t data = wav.find("data");
  auto error = [](const std::string& bytes, const AudioFormatSpec& format = kWav) {
    return audio_test::DecodeError(format, bytes, 7, 300);
  };
  ExpectInvalid(error("OggS and more"), "does not start with \"RIFF\"");
  ExpectInvalid(error(std::string("RIFF\x10\x00\x00\x00WAVX", 12)), "a RIFF file that is not WAVE");
  ExpectInvalid(error(""), "no WAV data in the input");
  ExpectInvalid(error(wav.substr(0, data - 3)), "the stream ended before its data chunk");
  std::string adpcm = wav;
  adpcm[fmt + 8] = 2;  // format tag 2: MS ADPCM
  ExpectInvalid(error(adpcm), "format 2 with 16 bits is not supported");
  const std::string data_first =
      wav.substr(0, 12) + std::string("data\x00\x00\x00\x00", 8) + wav.substr(12);
  ExpectInvalid(error(data_first), "the data chunk comes before the fmt chunk");
  ExpectInvalid(error(wav, {AudioEncoding::kWav, 8000, 0}),
                "the fmt chunk says 16000 Hz but the config declared audio.sample_rate_hz 8000");
  const std::string wav24 = Sox(ClipPath("clip_a"), "-b 24 -t wav", "bad24.wav");
  std::string odd = wav24 + "x";
  WriteLe32(&odd, wav24.find("data") + 4, 0xFFFFFFFF);
  ExpectInvalid(error(odd), "the stream ends with 1 bytes of an incomplete sample");
}

}  // namespace
}  // namespace speechllm::streaming
