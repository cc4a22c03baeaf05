// The client's container durations (client/container_file.h), by which it paces WebM and FLAC
// files: FLAC's STREAMINFO (behind an ID3v2 tag too), WebM's Info Duration with its
// TimestampScale, and without a Duration (a MediaRecorder file, unknown sizes) the last block's
// timestamp. The bytes are built here field by field.
#include "client/container_file.h"

#include <cstring>
#include <string>

#include "gtest/gtest.h"

namespace speechllm::client {
namespace {

// "fLaC" and a STREAMINFO block (last) for `total` samples at `rate_hz`, stereo 16-bit.
std::string Flac(uint32_t rate_hz, uint64_t total) {
  std::string info(34, '\0');
  info[10] = static_cast<char>(rate_hz >> 12);
  info[11] = static_cast<char>(rate_hz >> 4);
  info[12] = static_cast<char>((rate_hz & 0x0F) << 4 | (2 - 1) << 1);  // channels - 1
  info[13] = static_cast<char>((16 - 1) << 4 | (total >> 32 & 0x0F));  // bits - 1
  for (int i = 0; i < 4; ++i) info[14 + i] = static_cast<char>(total >> (24 - 8 * i));
  return std::string("fLaC\x80\x00\x00\x22", 8) + info;
}

// An EBML element: `id` (as written), a 1-byte size (or unknown), then `data`.
std::string Element(const std::string& id, const std::string& data, bool unknown_size = false) {
  return id + std::string(1, static_cast<char>(unknown_size ? 0xFF : 0x80 | data.size())) + data;
}

std::string Float64(double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, 8);
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(bits >> (56 - 8 * i));
  return bytes;
}

const std::string kEbmlHeader = Element("\x1A\x45\xDF\xA3", Element("\x42\x82", "webm"));
const std::string kSegment = "\x18\x53\x80\x67";
const std::string kInfo = "\x15\x49\xA9\x66";
const std::string kCluster = "\x1F\x43\xB6\x75";
const std::string kTimestampScale = "\x2A\xD7\xB1";
const std::string kDuration = "\x44\x89";

TEST(ContainerFileTest, FlacDurationFromStreamInfo) {
  EXPECT_DOUBLE_EQ(FlacDurationSeconds(Flac(16000, 53920)), 3.37);
  EXPECT_DOUBLE_EQ(FlacDurationSeconds(Flac(44100, 44100ull * 7200)), 7200.0);  // 36-bit total
  const std::string id3 = std::string("ID3\x03\x00\x00\x00\x00\x00\x05", 10) + "xxxxx";
  EXPECT_DOUBLE_EQ(FlacDurationSeconds(id3 + Flac(48000, 24000)), 0.5);
  EXPECT_EQ(FlacDurationSeconds(Flac(16000, 0)), 0);                    // STREAMINFO does not say
  EXPECT_EQ(FlacDurationSeconds("RIFF....WAVE"), 0);                    // not FLAC
  EXPECT_EQ(FlacDurationSeconds(Flac(16000, 53920).substr(0, 20)), 0);  // cut short
}

TEST(ContainerFileTest, WebmDurationFromInfoOrTheLastBlock) {
  // Info: ticks of 1 ms (the default scale named anyway) and a Duration of 3,370 ticks.
  const std::string info = Element(kInfo, Element(kTimestampScale, std::string("\x0F\x42\x40", 3)) +
                                              Element(kDuration, Float64(3370.0)));
  EXPECT_DOUBLE_EQ(WebmDurationSeconds(kEbmlHeader + Element(kSegment, info)), 3.37);
  // Ticks of 2 ms: the same Duration is twice as long.
  const std::string info_2ms =
      Element(kInfo, Element(kTimestampScale, std::string("\x1E\x84\x80", 3)) +
                         Element(kDuration, Float64(3370.0)));
  EXPECT_DOUBLE_EQ(WebmDurationSeconds(kEbmlHeader + Element(kSegment, info_2ms)), 6.74);
  // No Duration, unknown sizes: clusters at 0 and 3,000 ticks, the last block 350 ticks in.
  const std::string block = std::string("\x81\x01\x5E\x80", 4) + "opus";  // track 1, +350
  const std::string first_block = std::string("\x81\x00\x00\x80", 4) + "opus";
  const std::string live =
      kEbmlHeader + kSegment + "\x01\xFF\xFF\xFF\xFF\xFF\xFF\xFF" +
      Element(kCluster, Element("\xE7", std::string(1, '\0')) + Element("\xA3", first_block),
              /*unknown_size=*/true) +
      Element(kCluster, Element("\xE7", std::string("\x0B\xB8", 2)) + Element("\xA3", block),
              /*unknown_size=*/true);
  EXPECT_DOUBLE_EQ(WebmDurationSeconds(live), 3.35 + 0.02);
  EXPECT_EQ(WebmDurationSeconds(kEbmlHeader), 0);
  EXPECT_EQ(WebmDurationSeconds("fLaC"), 0);
}

}  // namespace
}  // namespace speechllm::client
