// FLAC decoding (label unit): the clip encoded by sox (libFLAC) at several rates, channel counts
// and depths decodes bit for bit to the same audio sent as raw PCM, under any split (down to a
// few bytes a call, so frames restart many times); an ID3v2 tag in front and an ID3v1 tag after
// the end are skipped; a missing frame leaves no gap; Drain releases the resampler's tail;
// malformed streams and frames beyond STREAMINFO's bound are INVALID_ARGUMENT naming the problem.
#include <cstring>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "streaming/audio_decoder.h"
#include "streaming/flac_decoder.h"
#include "tests/unit/streaming/audio_decoder_test_util.h"

namespace speechllm::streaming {
namespace {

using audio_test::ClipPath;
using audio_test::DecodeChunks;
using audio_test::FirstDifference;
using audio_test::RandomSplit;
using audio_test::Sox;

const AudioFormatSpec kFlac{AudioEncoding::kFlac, 0, 0};
constexpr char kS16[] = "-t raw -e signed-integer -b 16 -L";
constexpr char kF32[] = "-t raw -e floating-point -b 32 -L";

struct FlacCase {
  std::string name;
  std::string sox_args;  // rate, channels and depth of the FLAC (and of the raw reference)
  std::string raw_args;  // the raw PCM the FLAC must equal
  AudioFormatSpec raw_format;
};

TEST(FlacDecoderTest, DecodesAsTheSameAudioSentAsRawPcm) {
  const std::string a = ClipPath("clip_a");
  const std::string aa = a + " " + a + " -M";
  const std::vector<FlacCase> cases = {
      {"16 kHz mono 16-bit", "", kS16, {AudioEncoding::kPcmS16le, 16000, 1}},
      {"44.1 kHz stereo 16-bit", "-r 44100 -c 2", kS16, {AudioEncoding::kPcmS16le, 44100, 2}},
      {"8 kHz mono 16-bit", "-r 8000", kS16, {AudioEncoding::kPcmS16le, 8000, 1}},
      // 24-bit samples are exact in float32, so raw float32 of the same samples is the reference.
      {"48 kHz mono 24-bit", "-r 48000 -b 24", kF32, {AudioEncoding::kPcmF32le, 48000, 1}},
  };
  for (const FlacCase& c : cases) {
    const std::string inputs = c.raw_format.channels == 2 ? aa : a;
    const std::string flac = Sox(inputs, c.sox_args + " -t flac", "clip.flac");
    const std::string flac_path = audio_test::TempPath("clip_ref.flac");
    std::ofstream(flac_path, std::ios::binary) << flac;
    const std::string raw = Sox(flac_path, c.raw_args, "clip.raw");
    std::remove(flac_path.c_str());
    ASSERT_FALSE(flac.empty() || raw.empty()) << c.name;
    absl::StatusOr<std::vector<float>> expected = DecodeChunks(c.raw_format, raw);
    ASSERT_TRUE(expected.ok()) << c.name << ": " << expected.status();
    for (uint32_t seed : {0u, 1u, 2u}) {
      // Seed 0: one call; 1: chunks up to 4,000 bytes; 2: up to 40 bytes.
      const std::vector<size_t> chunks =
          seed == 0 ? std::vector<size_t>{} : RandomSplit(flac.size(), seed, seed == 1 ? 4000 : 40);
      absl::StatusOr<std::vector<float>> got = DecodeChunks(kFlac, flac, chunks);
      ASSERT_TRUE(got.ok()) << c.name << ": " << got.status();
      std::printf("%-24s %6zu bytes in %4zu calls: %zu samples, first difference %lld\n",
                  c.name.c_str(), flac.size(), std::max<size_t>(1, chunks.size()), got->size(),
                  static_cast<long long>(FirstDifference(*got, *expected)));
      EXPECT_EQ(FirstDifference(*got, *expected), -1) << c.name << " seed " << seed;
    }
  }
}

// Frames of 65,535 samples (about 100 KiB each, beyond the subset's limit: `flac --lax`) sent 100
// bytes at a time: each is retried only as its bytes grow by a quarter, and the samples are the
// same as from one call.
TEST(FlacDecoderTest, LargeFramesInSmallPieces) {
  if (std::string(SPEECHLLM_FLAC_BIN).empty()) {
    FAIL() << "flac is not installed (scripts/setup_debian.sh installs it)";
  }
  const std::string wav = audio_test::TempPath("large.wav");
  std::ofstream(wav, std::ios::binary)
      << Sox(ClipPath("clip_a"), "-r 48000 -c 2 -b 24 -t wav", "large_src.wav");
  const std::string path = audio_test::TempPath("large.flac");
  ASSERT_TRUE(audio_test::RunCommand(
      absl::StrCat(SPEECHLLM_FLAC_BIN, " -s -f --lax ", "--blocksize=65535 -o ", path, " ", wav)));
  const std::string flac = audio_test::ReadFileBytes(path);
  std::remove(wav.c_str());
  std::remove(path.c_str());
  absl::StatusOr<std::vector<float>> whole = DecodeChunks(kFlac, flac);
  ASSERT_TRUE(whole.ok()) << whole.status();
  absl::StatusOr<std::unique_ptr<FlacDecoder>> decoder = FlacDecoder::Create(kFlac, 16000);
  ASSERT_TRUE(decoder.ok());
  const absl::Time start = absl::Now();
  std::vector<float> pieces;
  for (size_t at = 0; at < flac.size(); at += 100) {
    ASSERT_TRUE((*decoder)->Decode(absl::string_view(flac).substr(at, 100), &pieces, nullptr).ok());
  }
  ASSERT_TRUE((*decoder)->Finish(&pieces).ok());
  const int64_t frames = static_cast<int64_t>((whole->size() * 48000 / 16000 + 65534) / 65535);
  std::printf(
      "%zu bytes in %zu calls: %zu samples in %.0f ms, %lld stalled attempts on %lld "
      "frames, first difference %lld\n",
      flac.size(), (flac.size() + 99) / 100, pieces.size(),
      absl::ToDoubleMilliseconds(absl::Now() - start),
      static_cast<long long>((*decoder)->stalled_attempts()), static_cast<long long>(frames),
      static_cast<long long>(FirstDifference(pieces, *whole)));
  EXPECT_EQ(FirstDifference(pieces, *whole), -1);
  EXPECT_EQ(whole->size(), 53920u);
  // Retried on every call, each ~100 KiB frame would stall ~1,000 times; with retries past
  // 16 KiB held only after a quarter more has come, 164 free ones and ~9 more per frame.
  EXPECT_LT((*decoder)->stalled_attempts(), frames * 200);
}

TEST(FlacDecoderTest, AnId3TagInFrontIsSkipped) {
  const std::string flac = Sox(ClipPath("clip_a"), "-t flac", "id3.flac");
  // ID3v2.3, no flags, a 20-byte (syncsafe) body of padding.
  const std::string tagged =
      std::string("ID3\x03\x00\x00\x00\x00\x00\x14", 10) + std::string(20, '\0') + flac;
  absl::StatusOr<std::vector<float>> expected = DecodeChunks(kFlac, flac);
  absl::StatusOr<std::vector<float>> got =
      DecodeChunks(kFlac, tagged, RandomSplit(tagged.size(), 3, 500));
  ASSERT_TRUE(expected.ok() && got.ok()) << got.status();
  EXPECT_EQ(FirstDifference(*got, *expected), -1);
}

TEST(FlacDecoderTest, DrainReleasesTheResamplersTail) {
  const std::string flac = Sox(ClipPath("clip_a"), "-r 44100 -t flac", "drain.flac");
  auto decoder = AudioDecoder::Create(kFlac, 16000);
  ASSERT_TRUE(decoder.ok());
  std::vector<float> out;
  ASSERT_TRUE((*decoder)->Decode(flac, &out, nullptr).ok());
  const size_t before = out.size();
  ASSERT_TRUE((*decoder)->Drain(&out).ok());
  // The clip is 3.37 s: 148,617 samples at 44.1 kHz, 53,920 at 16 kHz (rounded).
  std::printf("decoded %zu samples, %zu after Drain\n", before, out.size());
  EXPECT_LT(before, out.size());
  EXPECT_NEAR(static_cast<double>(out.size()), 53920.0, 2.0);
}

using audio_test::ExpectInvalid;

absl::Status DecodeError(const std::string& bytes, const AudioFormatSpec& format = kFlac) {
  return audio_test::DecodeError(format, bytes, 9, 900);
}

TEST(FlacDecoderTest, MalformedStreamsAreInvalidArgument) {
  const std::string flac = Sox(ClipPath("clip_a"), "-t flac", "bad.flac");
  ASSERT_GT(flac.size(), 10000u);
  ExpectInvalid(DecodeError(audio_test::ReadFileBytes(ClipPath("clip_a"))),
                "does not start with \"fLaC\" (native FLAC); it starts with \"RI");
  ExpectInvalid(DecodeError(""), "no FLAC data in the input");
  ExpectInvalid(DecodeError(flac.substr(0, 30)), "the stream ends inside its metadata blocks");
  ExpectInvalid(DecodeError(flac.substr(0, flac.size() - 100)), "the stream ends inside a frame");
  std::string corrupt = flac;
  corrupt[flac.size() / 2] ^= 0x20;
  ExpectInvalid(DecodeError(corrupt),
                "a frame whose CRC does not match (corrupted data) (after frame");
  std::string not_streaminfo = flac;
  not_streaminfo[4] = static_cast<char>((not_streaminfo[4] & 0x80) | 4);  // VORBIS_COMMENT
  ExpectInvalid(DecodeError(not_streaminfo), "the first metadata block is not STREAMINFO");
  ExpectInvalid(DecodeError(flac, {AudioEncoding::kFlac, 44100, 0}),
                "STREAMINFO says 16000 Hz but the config declared audio.sample_rate_hz 44100");
  ExpectInvalid(DecodeError(flac, {AudioEncoding::kFlac, 0, 2}),
                "STREAMINFO says 1 channel(s) but the config declared audio.channels 2");
}

// The start of every frame: a sync code (0xFFF8 or 0xFFF9) whose header's CRC-8 (RFC 9639 9.1.8,
// polynomial x^8 + x^2 + x + 1) matches, found apart from libFLAC.
std::vector<size_t> FrameStarts(const std::string& flac, size_t first) {
  auto at = [&](size_t i) { return static_cast<uint8_t>(flac[i]); };
  std::vector<size_t> starts;
  for (size_t i = first; i + 16 < flac.size(); ++i) {
    if (at(i) != 0xFF || (at(i + 1) & 0xFE) != 0xF8) continue;
    size_t end = i + 4;
    int utf8 = 0;
    while (utf8 < 7 && (at(end) & (0x80 >> utf8)) != 0) ++utf8;
    end += utf8 == 0 ? 1 : utf8;
    const int block_code = at(i + 2) >> 4, rate_code = at(i + 2) & 0x0F;
    end += block_code == 6 ? 1 : block_code == 7 ? 2 : 0;
    end += rate_code == 12 ? 1 : (rate_code == 13 || rate_code == 14) ? 2 : 0;
    uint8_t crc = 0;
    for (size_t k = i; k < end; ++k) {
      crc ^= at(k);
      for (int bit = 0; bit < 8; ++bit) crc = (crc & 0x80) ? (crc << 1) ^ 0x07 : crc << 1;
    }
    if (crc == at(end)) starts.push_back(i);
  }
  return starts;
}

// A frame missing from the middle (its frame number skipped): libFLAC would fill the gap with
// silence only when it remembered the frame before, which depends on the split; the decoder never
// fills it, so one call and any split give the same samples, one frame shorter.
TEST(FlacDecoderTest, AMissingFrameLeavesNoGapWhateverTheSplit) {
  const std::string flac = Sox(ClipPath("clip_a"), "-t flac", "gap.flac");
  const std::vector<size_t> starts = FrameStarts(flac, 42);
  ASSERT_GT(starts.size(), 6u);
  const std::string gap = flac.substr(0, starts[3]) + flac.substr(starts[4]);
  absl::StatusOr<std::vector<float>> whole = DecodeChunks(kFlac, gap);
  ASSERT_TRUE(whole.ok()) << whole.status();
  for (uint32_t seed : {1u, 2u}) {
    absl::StatusOr<std::vector<float>> split =
        DecodeChunks(kFlac, gap, RandomSplit(gap.size(), seed, 3000));
    ASSERT_TRUE(split.ok()) << split.status();
    EXPECT_EQ(FirstDifference(*split, *whole), -1) << "seed " << seed;
  }
  std::printf("%zu frames, frame 3 removed: %zu samples (the clip: 53920)\n", starts.size(),
              whole->size());
  EXPECT_EQ(whole->size(), 53920u - 4096u);
}

TEST(FlacDecoderTest, AnId3v1TagAfterTheLastFrameIsAccepted) {
  const std::string flac = Sox(ClipPath("clip_a"), "-t flac", "v1.flac");
  const std::string tag = "TAG" + std::string(125, ' ');
  absl::StatusOr<std::vector<float>> plain = DecodeChunks(kFlac, flac);
  ASSERT_TRUE(plain.ok()) << plain.status();
  for (uint32_t seed : {0u, 1u, 2u}) {
    absl::StatusOr<std::vector<float>> got =
        DecodeChunks(kFlac, flac + tag,
                     seed == 0 ? std::vector<size_t>{} : RandomSplit(flac.size() + 128, seed, 60));
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(FirstDifference(*got, *plain), -1);
  }
  ExpectInvalid(DecodeError(flac + tag.substr(0, 40)),
                "40 bytes that are neither a frame nor a 128-byte ID3v1 tag");
  ExpectInvalid(DecodeError(flac + tag + "x"), "129 bytes that are neither a frame");
  ExpectInvalid(DecodeError(flac + std::string(64, '\0')), "(lost sync)");
}

// STREAMINFO says blocks of 16 samples (and no frame size): a 4,096-sample frame is far beyond
// what it allows, held or whole.
TEST(FlacDecoderTest, AFrameBeyondWhatStreamInfoAllowsIsRefused) {
  std::string flac = Sox(ClipPath("clip_a"), "-t flac", "cap.flac");
  const std::string sixteen("\x00\x10\x00\x10", 4);  // min and max block size
  flac.replace(8, 4, sixteen);
  flac.replace(12, 6, std::string(6, '\0'));  // min and max frame size: unknown
  ExpectInvalid(DecodeError(flac), "STREAMINFO allows");
  ExpectInvalid(DecodeChunks(kFlac, flac).status(), "STREAMINFO allows");
}

TEST(FlacDecoderTest, OneCallStopsAtItsSampleLimit) {
  std::vector<float> out;
  const absl::Status status = audio_test::DecodeOnceWithLimit(
      kFlac, Sox(ClipPath("clip_a"), "-t flac", "limit.flac"), 16000, &out);
  EXPECT_TRUE(IsAudioTooLongError(status)) << status;
  EXPECT_LE(out.size(), 16000u + 4096u);
}

}  // namespace
}  // namespace speechllm::streaming
