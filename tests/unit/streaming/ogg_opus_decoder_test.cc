// Ogg Opus and raw Opus packet decoding (label unit): the clip encoded by opusenc decodes to what
// opusdec (opusfile) gives at 48 kHz and to the clip's exact length at 16 kHz; chained streams,
// output gain; truncated pages, corrupted bytes, missing pages, corrupt Opus packets, missing
// headers and undeclared rates or channel counts are INVALID_ARGUMENT naming the problem.
#include <opus.h>

#include <cstring>

#include "engine/io/wav_reader.h"
#include "gtest/gtest.h"
#include "streaming/audio_decoder.h"
#include "tests/unit/streaming/audio_decoder_test_util.h"

namespace speechllm::streaming {
namespace {

using audio_test::ClipOpus;
using audio_test::DecodeChunks;
using audio_test::FirstDifference;
using audio_test::RandomSplit;
using audio_test::Remux;

const AudioFormatSpec kOgg{AudioEncoding::kOggOpus, 0, 0};

// The byte offsets at which each Ogg page starts.
std::vector<size_t> PageStarts(const std::string& bytes) {
  std::vector<size_t> starts;
  size_t at = 0;
  for (const audio_test::OggPage& page : audio_test::OggPages(bytes)) {
    starts.push_back(at);
    at += page.header.size() + page.body.size();
  }
  return starts;
}

using audio_test::DecodeError;
using audio_test::ExpectInvalid;

TEST(OggOpusDecoderTest, MatchesOpusdecAt48kHzAndKeepsTheClipLengthAt16kHz) {
  const std::string& opus = ClipOpus();
  ASSERT_FALSE(opus.empty());
  const std::string raw = audio_test::TempPath("opusdec.f32");
  const std::string opus_path = audio_test::TempPath("in.opus");
  std::ofstream(opus_path, std::ios::binary) << opus;
  ASSERT_FALSE(std::string(SPEECHLLM_OPUSDEC_BIN).empty()) << "opusdec (opus-tools) is missing";
  ASSERT_TRUE(audio_test::RunCommand(
      absl::StrCat(SPEECHLLM_OPUSDEC_BIN, " --quiet --float --rate 48000 ", opus_path, " ", raw)));
  const std::string ref_bytes = audio_test::ReadFileBytes(raw);
  std::remove(raw.c_str());
  std::remove(opus_path.c_str());
  std::vector<float> reference(ref_bytes.size() / 4);
  std::memcpy(reference.data(), ref_bytes.data(), reference.size() * 4);
  auto at48 = DecodeChunks(kOgg, opus, RandomSplit(opus.size(), 3), 48000);
  ASSERT_TRUE(at48.ok()) << at48.status();
  const auto stats = speechllm::testing::CompareVectors(*at48, reference);
  std::printf("48 kHz: %zu samples, opusdec %zu; max |diff| %g\n", at48->size(), reference.size(),
              stats.max_abs);
  EXPECT_EQ(at48->size(), reference.size());
  EXPECT_LT(stats.max_abs, 1e-6);
  auto at16 = DecodeChunks(kOgg, opus);
  ASSERT_TRUE(at16.ok()) << at16.status();
  std::printf("16 kHz: %zu samples (clip 53920)\n", at16->size());
  EXPECT_EQ(at16->size(), 53920u);  // pre-skip and end trimming at 16 kHz
}

TEST(OggOpusDecoderTest, ChainedStreamsAndOutputGain) {
  const std::string& opus = ClipOpus();
  auto one = DecodeChunks(kOgg, opus);
  ASSERT_TRUE(one.ok()) << one.status();
  auto two = DecodeChunks(kOgg, opus + opus, RandomSplit(2 * opus.size(), 5));
  ASSERT_TRUE(two.ok()) << two.status();
  EXPECT_EQ(two->size(), 2 * one->size());
  // +6.0206 dB in the OpusHead (Q7.8: 1541) doubles the output.
  const std::string louder = Remux(opus, [](std::vector<std::string>* packets) {
    (*packets)[0][16] = static_cast<char>(1541 & 0xff);
    (*packets)[0][17] = static_cast<char>(1541 >> 8);
  });
  auto gained = DecodeChunks(kOgg, louder);
  ASSERT_TRUE(gained.ok()) << gained.status();
  ASSERT_EQ(gained->size(), one->size());
  double ratio_sum = 0;
  int n = 0;
  for (size_t i = 0; i < one->size(); ++i) {
    if (std::abs((*one)[i]) > 0.05f) ratio_sum += (*gained)[i] / (*one)[i], ++n;
  }
  std::printf("gain 1541/256 dB: mean sample ratio %.4f over %d samples\n", ratio_sum / n, n);
  EXPECT_NEAR(ratio_sum / n, 2.0, 0.01);
}

TEST(OggOpusDecoderTest, MalformedStreamsAreInvalidArgument) {
  const std::string& opus = ClipOpus();
  const std::vector<size_t> pages = PageStarts(opus);
  ASSERT_GT(pages.size(), 5u);
  std::printf("truncated page:\n");
  ExpectInvalid(DecodeError(kOgg, opus.substr(0, opus.size() - 7)), "ends inside a page");
  std::printf("flipped byte in page 3:\n");
  std::string flipped = opus;
  flipped[pages[3] + 40] ^= 0x10;
  ExpectInvalid(DecodeError(kOgg, flipped), "CRC mismatch");
  std::printf("missing page 3:\n");
  ExpectInvalid(DecodeError(kOgg, opus.substr(0, pages[3]) + opus.substr(pages[4])),
                "page sequence gap");
  std::printf("not Ogg:\n");
  ExpectInvalid(DecodeError(kOgg, "RIFF....WAVEfmt "), "does not start with an Ogg page");
  std::printf("empty input:\n");
  ExpectInvalid(DecodeChunks(kOgg, "").status(), "no Ogg page");
  std::printf("headers only:\n");
  ExpectInvalid(DecodeError(kOgg, opus.substr(0, pages[1])), "before its OpusHead and OpusTags");
  std::printf("corrupt Opus packet:\n");
  const std::string corrupt = Remux(opus, [](std::vector<std::string>* packets) {
    (*packets)[10] = std::string("\x03\x00", 2);  // code 3 with zero frames (RFC 6716 3.2.5)
  });
  ExpectInvalid(DecodeError(kOgg, corrupt), "corrupt Opus packet 9");
  std::printf("not OpusHead:\n");
  ExpectInvalid(
      DecodeError(
          kOgg,
          Remux(opus, [](std::vector<std::string>* p) { (*p)[0].replace(0, 8, "OpusHeat"); })),
      "none of the 1 logical streams is Opus");
}

// The pages of a logical stream of another codec (here the first and last page of an Ogg
// Skeleton 4.0 stream, RFC 7845 3): `first` holds its identification header.
struct OtherStreamPages {
  std::string first;
  std::string last;
};
OtherStreamPages OtherStream(int serial, const std::string& head_packet) {
  ogg_stream_state stream;
  ogg_stream_init(&stream, serial);
  OtherStreamPages pages;
  auto flush = [&](std::string* to) {
    ogg_page page;
    while (ogg_stream_flush(&stream, &page) != 0) {
      to->append(reinterpret_cast<const char*>(page.header), page.header_len);
      to->append(reinterpret_cast<const char*>(page.body), page.body_len);
    }
  };
  std::string head = head_packet;
  ogg_packet packet{};
  packet.packet = reinterpret_cast<unsigned char*>(head.data());
  packet.bytes = static_cast<long>(head.size());
  packet.b_o_s = 1;
  ogg_stream_packetin(&stream, &packet);
  flush(&pages.first);
  ogg_packet end{};
  end.e_o_s = 1;
  end.packetno = 1;
  ogg_stream_packetin(&stream, &end);
  flush(&pages.last);
  ogg_stream_clear(&stream);
  return pages;
}

// RFC 7845 3 lets an Ogg Opus file carry other logical streams; their pages are skipped even when
// their first page comes before the Opus stream's.
TEST(OggOpusDecoderTest, AnotherCodecsStreamBesideTheOpusOneIsSkipped) {
  const std::string& opus = ClipOpus();
  const std::vector<size_t> pages = PageStarts(opus);
  ASSERT_GE(pages.size(), 3u);
  const OtherStreamPages skeleton =
      OtherStream(77, std::string("fishead\0", 8) + std::string(56, '\0'));
  // Both first pages, then the other stream's last page between the Opus headers' pages.
  const std::string multiplexed =
      skeleton.first + opus.substr(0, pages[1]) + skeleton.last + opus.substr(pages[1]);
  absl::StatusOr<std::vector<float>> alone = DecodeChunks(kOgg, opus);
  absl::StatusOr<std::vector<float>> beside =
      DecodeChunks(kOgg, multiplexed, RandomSplit(multiplexed.size(), 5));
  ASSERT_TRUE(alone.ok()) << alone.status();
  ASSERT_TRUE(beside.ok()) << beside.status();
  std::printf("%zu samples alone, %zu beside a Skeleton stream\n", alone->size(), beside->size());
  EXPECT_EQ(*beside, *alone);
  std::printf("only another codec's stream:\n");
  ExpectInvalid(DecodeError(kOgg, skeleton.first + skeleton.last), "none of the 1 logical streams");
  ExpectInvalid(DecodeChunks(kOgg, skeleton.first).status(), "none of the 1 logical streams");
}

// Two-byte packets (code 3, six empty 20 ms CELT frames, RFC 6716 3.2.5) decode to 120 ms each:
// a few KiB hold minutes. A decoder with a bound stops once a call passes it.
TEST(OggOpusDecoderTest, ExpandingPacketsStopAtTheSampleLimitOfOneCall) {
  const std::string expanding = Remux(ClipOpus(), [](std::vector<std::string>* packets) {
    packets->resize(2);
    for (int i = 0; i < 1000; ++i) packets->emplace_back("\xFB\x06", 2);
  });
  absl::StatusOr<std::vector<float>> unbounded = DecodeChunks(kOgg, expanding);
  ASSERT_TRUE(unbounded.ok()) << unbounded.status();
  std::printf("%zu bytes decode to %.1f s at 16 kHz without a limit\n", expanding.size(),
              unbounded->size() / 16000.0);
  EXPECT_GE(unbounded->size(), 998u * 1920u);  // less the pre-skip

  auto decoder = AudioDecoder::Create(kOgg, 16000);
  ASSERT_TRUE(decoder.ok());
  (*decoder)->LimitSamplesPerDecode(16000 * 30);
  std::vector<float> out;
  const absl::Status status = (*decoder)->Decode(expanding, &out, nullptr);
  std::printf("with a 30 s limit: %s after %.2f s\n", status.ToString().c_str(),
              out.size() / 16000.0);
  EXPECT_TRUE(IsAudioTooLongError(status)) << status;
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LE(out.size(), 16000u * 30 + 1920u) << "decoding went on past the limit";
  // The bound is per call: the same bytes in pieces smaller than a page (255 packets, 30.6 s)
  // decode within a 60 s bound.
  auto pieces = AudioDecoder::Create(kOgg, 16000);
  ASSERT_TRUE(pieces.ok());
  (*pieces)->LimitSamplesPerDecode(16000 * 60);
  std::vector<float> all;
  for (size_t at = 0; at < expanding.size(); at += 512) {
    ASSERT_TRUE(
        (*pieces)->Decode(absl::string_view(expanding).substr(at, 512), &all, nullptr).ok());
  }
  EXPECT_EQ(all.size(), unbounded->size());
}

TEST(OggOpusDecoderTest, DeclaredRateAndChannelsMustMatchTheOpusHead) {
  const std::string& opus = ClipOpus();  // OpusHead: 1 channel, input rate 16000
  for (int rate : {0, 16000, 48000}) {
    EXPECT_TRUE(DecodeChunks({AudioEncoding::kOggOpus, rate, 1}, opus).ok()) << rate;
  }
  std::printf("declared 22050 Hz:\n");
  ExpectInvalid(DecodeError({AudioEncoding::kOggOpus, 22050, 0}, opus),
                "input sample rate is 16000 Hz but the config declared audio.sample_rate_hz 22050");
  std::printf("declared 2 channels:\n");
  ExpectInvalid(DecodeError({AudioEncoding::kOggOpus, 0, 2}, opus), "has 1 channel(s)");
}

TEST(OpusPacketDecoderTest, OnePacketPerCallAtSixteenKilohertz) {
  auto clip = engine::ReadMonoWavFile(audio_test::ClipPath("clip_a"), 16000);
  ASSERT_TRUE(clip.ok());
  int error = 0;
  OpusEncoder* encoder = opus_encoder_create(16000, 1, OPUS_APPLICATION_VOIP, &error);
  ASSERT_EQ(error, OPUS_OK);
  opus_encoder_ctl(encoder, OPUS_SET_BITRATE(24000));
  opus_int32 lookahead = 0;
  opus_encoder_ctl(encoder, OPUS_GET_LOOKAHEAD(&lookahead));
  std::vector<std::string> packets;
  unsigned char buffer[1500];
  for (size_t at = 0; at + 320 <= clip->size(); at += 320) {
    const int n = opus_encode_float(encoder, clip->data() + at, 320, buffer, sizeof(buffer));
    ASSERT_GT(n, 0);
    packets.emplace_back(reinterpret_cast<char*>(buffer), n);
  }
  opus_encoder_destroy(encoder);
  auto decoder = AudioDecoder::Create({AudioEncoding::kOpusPacket, 0, 0}, 16000);
  ASSERT_TRUE(decoder.ok()) << decoder.status();
  EXPECT_TRUE((*decoder)->ChunksArePackets());
  std::vector<float> out;
  size_t bytes = 0;
  for (const std::string& packet : packets) {
    const size_t before = out.size();
    ASSERT_TRUE((*decoder)->Decode(packet, &out, nullptr).ok());
    EXPECT_EQ(out.size() - before, 320u);
    bytes += packet.size();
  }
  ASSERT_TRUE((*decoder)->Finish(&out).ok());
  // Align for the encoder's lookahead, then compare in the band Opus keeps well.
  std::vector<float> aligned(out.begin() + lookahead, out.end());
  std::vector<float> reference(clip->begin(), clip->begin() + aligned.size());
  const double snr = audio_test::BandSnrDb(aligned, reference, 16000, 100, 3400);
  std::printf("%zu packets, %zu bytes (%.1f kbit/s); SNR (100-3400 Hz) %.1f dB\n", packets.size(),
              bytes, bytes * 8.0 / (out.size() / 16000.0) / 1000, snr);
  EXPECT_GT(snr, 3.0);
  std::printf("corrupt and empty packets:\n");
  std::vector<float> ignored;
  const absl::Status corrupt = (*decoder)->Decode(std::string("\x03\x00", 2), &ignored, nullptr);
  std::printf("  -> %s\n", corrupt.ToString().c_str());
  ExpectInvalid(corrupt, "corrupt Opus packet");
  ExpectInvalid((*decoder)->Decode("", &ignored, nullptr), "is empty");
}

}  // namespace
}  // namespace speechllm::streaming
