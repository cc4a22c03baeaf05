#include "client/container_file.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "streaming/ebml.h"

namespace speechllm::client {
namespace {

namespace ebml = speechllm::streaming::ebml;

uint8_t At(absl::string_view bytes, size_t i) { return static_cast<uint8_t>(bytes[i]); }

}  // namespace

size_t FlacStreamStart(absl::string_view bytes) {
  if (bytes.substr(0, 3) != "ID3" || bytes.size() < 10) return 0;
  size_t pos = 10 + ((At(bytes, 6) & 0x7F) << 21 | (At(bytes, 7) & 0x7F) << 14 |
                     (At(bytes, 8) & 0x7F) << 7 | (At(bytes, 9) & 0x7F));
  if ((At(bytes, 5) & 0x10) != 0) pos += 10;  // a footer
  return pos;
}

double FlacDurationSeconds(absl::string_view bytes) {
  const size_t pos = FlacStreamStart(bytes);
  // "fLaC", STREAMINFO's 4-byte block header, then its fields (RFC 9639 8.2): the rate is the 20
  // bits at byte 10, the total samples the low 36 bits of bytes 13 to 17.
  const size_t info = pos + 8;
  if (bytes.size() < info + 18 || bytes.substr(pos, 4) != "fLaC" ||
      (At(bytes, pos + 4) & 0x7F) != 0)
    return 0;
  const uint32_t rate =
      At(bytes, info + 10) << 12 | At(bytes, info + 11) << 4 | At(bytes, info + 12) >> 4;
  uint64_t total = At(bytes, info + 13) & 0x0F;
  for (size_t i = 14; i < 18; ++i) total = total << 8 | At(bytes, info + i);
  return rate == 0 ? 0 : static_cast<double>(total) / rate;
}

double WebmDurationSeconds(absl::string_view bytes) {
  uint64_t tick_ns = 1000000;  // TimestampScale's default
  double duration_ticks = -1;
  uint64_t cluster_ticks = 0;
  int64_t last_block_ticks = -1;
  for (size_t pos = 0; pos < bytes.size();) {
    ebml::ElementHeader header;
    if (ebml::ReadElementHeader(bytes.substr(pos), &header) != ebml::ReadResult::kOk) break;
    const size_t data = pos + header.header_bytes;
    if (header.id == ebml::kSegment || header.id == ebml::kCluster || header.id == ebml::kInfo ||
        header.id == ebml::kBlockGroup) {
      pos = data;  // walk into it (its size may be unknown)
      continue;
    }
    if (header.size == ebml::kUnknownSize ||
        static_cast<uint64_t>(header.size) > bytes.size() - data) {
      break;
    }
    const absl::string_view payload = bytes.substr(data, static_cast<size_t>(header.size));
    if (header.id == ebml::kTimestampScale)
      tick_ns = std::max<uint64_t>(1, ebml::ReadUnsigned(payload));
    if (header.id == ebml::kDuration) duration_ticks = ebml::ReadFloat(payload);
    if (header.id == ebml::kClusterTimestamp) cluster_ticks = ebml::ReadUnsigned(payload);
    if (header.id == ebml::kSimpleBlock || header.id == ebml::kBlock) {
      ebml::Block block;
      if (ebml::ParseBlock(payload, &block).ok()) {
        last_block_ticks = std::max<int64_t>(
            last_block_ticks, static_cast<int64_t>(cluster_ticks) + block.relative_timestamp);
      }
    }
    pos = data + static_cast<size_t>(header.size);
  }
  if (duration_ticks > 0) return duration_ticks * static_cast<double>(tick_ns) / 1e9;
  if (last_block_ticks >= 0) return static_cast<double>(last_block_ticks) * tick_ns / 1e9 + 0.02;
  return 0;
}

PcmAudio ContainerAudio(std::string bytes, speechllm::v1::AudioFormat::Encoding encoding) {
  PcmAudio audio;
  audio.format.set_encoding(encoding);
  audio.container_seconds = encoding == speechllm::v1::AudioFormat::FLAC
                                ? FlacDurationSeconds(bytes)
                                : WebmDurationSeconds(bytes);
  audio.data = std::move(bytes);
  return audio;
}

}  // namespace speechllm::client
