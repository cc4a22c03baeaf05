// WebM Opus decoding (label unit): the clip encoded by opusenc and muxed into WebM by mkvmerge
// (laced and unlaced blocks, and the live form with Segment and Cluster sizes unknown, as
// MediaRecorder streams it) decodes bit for bit to what the same Opus packets give from Ogg, under
// any split; chained Segments; malformed streams are INVALID_ARGUMENT naming the problem; the
// block parser's three lacings.
#include <cstring>

#include "gtest/gtest.h"
#include "streaming/audio_decoder.h"
#include "streaming/ebml.h"
#include "tests/unit/streaming/audio_decoder_test_util.h"

namespace speechllm::streaming {
namespace {

using audio_test::ClipOpus;
using audio_test::DecodeChunks;
using audio_test::FirstDifference;
using audio_test::RandomSplit;
using audio_test::ToWebm;

const AudioFormatSpec kOgg{AudioEncoding::kOggOpus, 0, 0};
const AudioFormatSpec kWebm{AudioEncoding::kWebmOpus, 0, 0};

// Length of the variable-length integer that starts with `first`.
int VintLength(uint8_t first) {
  int n = 1;
  while (n <= 8 && (first & (0x80 >> (n - 1))) == 0) ++n;
  return n;
}

// An element header at `at`: where its size field starts, its width, and where its data starts
// and ends. Written apart from the decoder's parser, so that the tests do not trust it.
struct Header {
  uint32_t id = 0;
  size_t size_at = 0;
  int size_width = 0;
  size_t data = 0;
  size_t end = 0;
};
Header ReadHeader(const std::string& bytes, size_t at) {
  Header h;
  const int id_width = VintLength(static_cast<uint8_t>(bytes[at]));
  for (int i = 0; i < id_width; ++i) h.id = (h.id << 8) | static_cast<uint8_t>(bytes[at + i]);
  h.size_at = at + id_width;
  h.size_width = VintLength(static_cast<uint8_t>(bytes[h.size_at]));
  uint64_t size = static_cast<uint8_t>(bytes[h.size_at]) & (0xFF >> h.size_width);
  for (int i = 1; i < h.size_width; ++i)
    size = (size << 8) | static_cast<uint8_t>(bytes[h.size_at + i]);
  h.data = h.size_at + h.size_width;
  h.end = h.data + size;
  return h;
}

// The headers of the Segment's children (and the Segment's own, first).
std::vector<Header> SegmentChildren(const std::string& webm) {
  const Header ebml_header = ReadHeader(webm, 0);
  const Header segment = ReadHeader(webm, ebml_header.end);
  std::vector<Header> children = {segment};
  for (size_t at = segment.data; at < std::min(segment.end, webm.size());) {
    children.push_back(ReadHeader(webm, at));
    at = children.back().end;
  }
  return children;
}

// The SimpleBlocks of every Cluster.
std::vector<Header> SimpleBlocks(const std::string& webm) {
  std::vector<Header> blocks;
  for (const Header& child : SegmentChildren(webm)) {
    if (child.id != ebml::kCluster) continue;
    for (size_t at = child.data; at < child.end;) {
      const Header h = ReadHeader(webm, at);
      if (h.id == ebml::kSimpleBlock) blocks.push_back(h);
      at = h.end;
    }
  }
  return blocks;
}

// The live form: the Segment's and every Cluster's size "unknown" (all value bits set, same
// width), as a browser's MediaRecorder writes a stream it cannot seek back into; or the Clusters'
// alone.
std::string LiveForm(std::string webm, bool segment_too = true) {
  for (const Header& h : SegmentChildren(webm)) {
    if ((h.id != ebml::kSegment || !segment_too) && h.id != ebml::kCluster) continue;
    webm[h.size_at] = static_cast<char>(0xFF >> (h.size_width - 1));
    for (int i = 1; i < h.size_width; ++i) webm[h.size_at + i] = static_cast<char>(0xFF);
  }
  return webm;
}

void ExpectSameSamples(const std::string& name, const std::string& webm,
                       const std::vector<float>& expected, int output_rate_hz) {
  for (uint32_t seed : {1u, 2u, 3u}) {
    absl::StatusOr<std::vector<float>> got = DecodeChunks(
        kWebm, webm, seed == 1 ? std::vector<size_t>{} : RandomSplit(webm.size(), seed, 700),
        output_rate_hz);
    ASSERT_TRUE(got.ok()) << name << ": " << got.status();
    std::printf("%-22s %6zu bytes, seed %u: %zu samples at %d Hz, first difference %lld\n",
                name.c_str(), webm.size(), seed, got->size(), output_rate_hz,
                static_cast<long long>(FirstDifference(*got, expected)));
    EXPECT_EQ(FirstDifference(*got, expected), -1) << name << " seed " << seed;
  }
}

TEST(WebmOpusDecoderTest, DecodesAsTheOggOpusItWasMuxedFrom) {
  const std::string& ogg = ClipOpus();
  const std::string laced = ToWebm(ogg, "", "laced");
  const std::string unlaced = ToWebm(ogg, "--disable-lacing", "unlaced");
  ASSERT_FALSE(laced.empty());
  ASSERT_FALSE(unlaced.empty());
  EXPECT_GT(SimpleBlocks(unlaced).size(), SimpleBlocks(laced).size());
  for (int rate : {8000, 16000, 48000}) {
    absl::StatusOr<std::vector<float>> expected = DecodeChunks(kOgg, ogg, {}, rate);
    ASSERT_TRUE(expected.ok()) << expected.status();
    ExpectSameSamples("laced", laced, *expected, rate);
    ExpectSameSamples("unlaced", unlaced, *expected, rate);
    ExpectSameSamples("live (unknown sizes)", LiveForm(laced), *expected, rate);
  }
}

TEST(WebmOpusDecoderTest, StereoAt48kHzAndChainedSegments) {
  const std::string a = audio_test::ClipPath("clip_a");
  const std::string stereo48 = audio_test::TempPath("a48.wav");
  std::ofstream(stereo48, std::ios::binary)
      << audio_test::Sox(a + " " + a + " -M", "-r 48000 -b 16 -t wav", "a48s.wav");
  const std::string ogg = audio_test::OpusEnc(stereo48, "--bitrate 64", "a48.opus");
  std::remove(stereo48.c_str());
  const std::string webm = ToWebm(ogg, "", "stereo");
  absl::StatusOr<std::vector<float>> expected = DecodeChunks(kOgg, ogg);
  ASSERT_TRUE(expected.ok()) << expected.status();
  ExpectSameSamples("stereo 48 kHz", webm, *expected, 16000);
  ExpectSameSamples("stereo 48 kHz, live", LiveForm(webm), *expected, 16000);

  // Two recordings back to back: each Segment starts over with its own Tracks.
  const std::string& clip = ClipOpus();
  absl::StatusOr<std::vector<float>> first = DecodeChunks(kOgg, clip);
  ASSERT_TRUE(first.ok());
  std::vector<float> both = *first;
  both.insert(both.end(), expected->begin(), expected->end());
  ExpectSameSamples("chained", ToWebm(clip, "", "first") + webm, both, 16000);
  ExpectSameSamples("chained, live", LiveForm(ToWebm(clip, "", "first")) + LiveForm(webm), both,
                    16000);
  // A sized Segment whose last Cluster is unsized ends where the next EBML header begins.
  ExpectSameSamples("chained, live clusters",
                    LiveForm(ToWebm(clip, "", "first"), /*segment_too=*/false) + webm, both, 16000);
}

using audio_test::ExpectInvalid;

absl::Status DecodeError(const std::string& bytes, const AudioFormatSpec& format = kWebm) {
  return audio_test::DecodeError(format, bytes, 5);
}

std::string Replaced(std::string bytes, const std::string& from, const std::string& to) {
  const size_t at = bytes.find(from);
  EXPECT_NE(at, std::string::npos) << "no " << from;
  if (at != std::string::npos) bytes.replace(at, from.size(), to);
  return bytes;
}

TEST(WebmOpusDecoderTest, MalformedStreamsAreInvalidArgument) {
  const std::string webm = ToWebm(ClipOpus(), "--disable-lacing", "bad");
  ASSERT_FALSE(webm.empty());
  ExpectInvalid(DecodeError(audio_test::ReadFileBytes(audio_test::ClipPath("clip_a"))),
                "does not start with an EBML header (1A 45 DF A3); it starts with \"RIFF\"");
  ExpectInvalid(DecodeError(""), "no EBML header in the input");
  ExpectInvalid(DecodeError(Replaced(webm, "webm", "wxbm")), "DocType is \"wxbm\"");
  ExpectInvalid(DecodeError(Replaced(webm, "A_OPUS", "A_OPUX")),
                "the audio track's codec is A_OPUX; only Opus (A_OPUS) is decoded");
  // The Tracks element's ID changed to one the decoder does not know: skipped, so the first
  // block comes before any Tracks. (The SeekHead names the Tracks ID too: patch the element.)
  const Header tracks = [&] {
    for (const Header& h : SegmentChildren(webm))
      if (h.id == ebml::kTracks) return h;
    return Header{};
  }();
  ASSERT_EQ(tracks.id, ebml::kTracks);
  std::string no_tracks = webm;
  no_tracks[tracks.size_at - 1] = 0x6A;
  ExpectInvalid(DecodeError(no_tracks), "a block before the Tracks element");
  const std::vector<Header> blocks = SimpleBlocks(webm);
  ASSERT_GT(blocks.size(), 20u);
  // Truncated inside a block of the middle, and inside the last element.
  ExpectInvalid(DecodeError(webm.substr(0, blocks[10].data + 3)), "ends inside an element");
  ExpectInvalid(DecodeError(webm.substr(0, webm.size() - 3)), "the stream ends inside element");
  // Block 10's packet made a code-3 packet of zero frames (RFC 6716 3.2.5); its header is the
  // track number (1 byte), the timestamp (2) and the flags (1).
  std::string corrupt = webm;
  corrupt[blocks[10].data + 4] = 0x03;
  corrupt[blocks[10].data + 5] = 0x00;
  ExpectInvalid(DecodeError(corrupt), "corrupt Opus packet 11");
  // A Cluster that claims more bytes than its Segment holds.
  const Header cluster = [&] {
    for (const Header& h : SegmentChildren(webm))
      if (h.id == ebml::kCluster) return h;
    return Header{};
  }();
  std::string overrun = webm;
  overrun[cluster.size_at] = static_cast<char>(0x01);  // 8-byte size ...
  overrun.replace(cluster.size_at + 1, 7, std::string("\x7F\xFF\xFF\xFF\xFF\xFF\xF0", 7));
  ExpectInvalid(DecodeError(overrun.substr(0, cluster.size_at + 8)),
                "runs past the end of its parent 0x18538067");
  // Tracks of unknown size: only Segments and Clusters may be.
  std::string unknown = webm;
  unknown[tracks.size_at] = static_cast<char>(0xFF >> (tracks.size_width - 1));
  for (int i = 1; i < tracks.size_width; ++i) unknown[tracks.size_at + i] = static_cast<char>(0xFF);
  ExpectInvalid(DecodeError(unknown), "has an unknown size (only Segments and Clusters may)");
  ExpectInvalid(DecodeError(webm, {AudioEncoding::kWebmOpus, 0, 2}),
                "the OpusHead has 1 channel(s) but the config declared audio.channels 2");
  ExpectInvalid(DecodeError(webm, {AudioEncoding::kWebmOpus, 22050, 0}),
                "input sample rate is 16000 Hz but the config declared audio.sample_rate_hz 22050");
}

TEST(WebmOpusDecoderTest, OneCallStopsAtItsSampleLimit) {
  std::vector<float> out;
  const absl::Status status =
      audio_test::DecodeOnceWithLimit(kWebm, ToWebm(ClipOpus(), "", "limit"), 16000, &out);
  EXPECT_TRUE(IsAudioTooLongError(status)) << status;
  EXPECT_LT(out.size(), 16000u + 8 * 960u);
}

TEST(EbmlTest, BlocksSplitIntoTheirLacedFrames) {
  const std::string a(3, 'a'), b(300, 'b'), c(5, 'c');
  // Track 1, timestamp 7, then the flags' lacing bits and the frame count less one.
  const std::string head("\x81\x00\x07", 3);
  const std::string xiph = head + "\x02\x02" + "\x03" + "\xFF\x2D" + a + b + c;
  // EBML lacing: the first size (3), then 297 as a 2-byte signed difference (bias 8191).
  const std::string ebml_laced = head + "\x06\x02" + "\x83" + "\x61\x28" + a + b + c;
  for (const std::string& bytes : {xiph, ebml_laced}) {
    ebml::Block block;
    ASSERT_TRUE(ebml::ParseBlock(bytes, &block).ok());
    EXPECT_EQ(block.track_number, 1u);
    EXPECT_EQ(block.relative_timestamp, 7);
    ASSERT_EQ(block.frames.size(), 3u);
    EXPECT_EQ(block.frames[0], a);
    EXPECT_EQ(block.frames[1], b);
    EXPECT_EQ(block.frames[2], c);
  }
  ebml::Block block;
  const std::string fixed = head + "\x04\x02" + "xxxxyyyyzzzz";
  ASSERT_TRUE(ebml::ParseBlock(fixed, &block).ok());
  ASSERT_EQ(block.frames.size(), 3u);
  EXPECT_EQ(block.frames[2], "zzzz");
  const std::string unlaced = head + std::string("\x00", 1) + "whole";
  ASSERT_TRUE(ebml::ParseBlock(unlaced, &block).ok());
  ASSERT_EQ(block.frames.size(), 1u);
  EXPECT_EQ(block.frames[0], "whole");
  // A negative difference: sizes 300, then 3 (-297 is 0x5ED6 with the 2-byte bias), then 5.
  const std::string shrinking = head + "\x06\x02" + "\x41\x2C" + "\x5E\xD6" + b + a + c;
  ASSERT_TRUE(ebml::ParseBlock(shrinking, &block).ok());
  ASSERT_EQ(block.frames.size(), 3u);
  EXPECT_EQ(block.frames[0], b);
  EXPECT_EQ(block.frames[1], a);
  EXPECT_EQ(block.frames[2], c);
  // 256 frames whose sizes are the largest 8-byte differences: refused at the first size past
  // the block's end, before any sum could overflow.
  std::string huge = head + "\x06\xFF";
  for (int i = 0; i < 255; ++i) huge += std::string("\x01\xFF\xFF\xFF\xFF\xFF\xFF\xFE", 8);
  EXPECT_FALSE(ebml::ParseBlock(huge, &block).ok());
  EXPECT_FALSE(ebml::ParseBlock(head + "\x04\x02" + "xxxxyyyyzzz", &block).ok());
  EXPECT_FALSE(ebml::ParseBlock(head + "\x02\x02" + "\x03\xFF\xFF" + a, &block).ok());
  EXPECT_FALSE(ebml::ParseBlock(std::string("\x81\x00", 2), &block).ok());
}

}  // namespace
}  // namespace speechllm::streaming
