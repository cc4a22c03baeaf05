// EBML (RFC 8794) and Matroska block primitives for the WebM demuxer (WebmOpusDecoder): element
// IDs and data sizes as variable-length integers, integer payloads, the children of a master
// element held whole, and Matroska blocks split into their laced frames (RFC 9559 10). Pure
// functions over caller-owned bytes; any thread.
#ifndef SPEECHLLM_STREAMING_EBML_H_
#define SPEECHLLM_STREAMING_EBML_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace speechllm::streaming::ebml {

// Element IDs (with their length marker, as written).
inline constexpr uint32_t kEbmlHeader = 0x1A45DFA3;
inline constexpr uint32_t kDocType = 0x4282;
inline constexpr uint32_t kSegment = 0x18538067;
inline constexpr uint32_t kSeekHead = 0x114D9B74;
inline constexpr uint32_t kInfo = 0x1549A966;
inline constexpr uint32_t kTimestampScale = 0x2AD7B1;  // in Info: nanoseconds per tick
inline constexpr uint32_t kDuration = 0x4489;          // in Info: ticks, a float
inline constexpr uint32_t kTracks = 0x1654AE6B;
inline constexpr uint32_t kTrackEntry = 0xAE;
inline constexpr uint32_t kTrackNumber = 0xD7;
inline constexpr uint32_t kTrackType = 0x83;
inline constexpr uint32_t kCodecId = 0x86;
inline constexpr uint32_t kCodecPrivate = 0x63A2;
inline constexpr uint32_t kContentEncodings = 0x6D80;
inline constexpr uint32_t kCluster = 0x1F43B675;
inline constexpr uint32_t kClusterTimestamp = 0xE7;
inline constexpr uint32_t kSimpleBlock = 0xA3;
inline constexpr uint32_t kBlockGroup = 0xA0;
inline constexpr uint32_t kBlock = 0xA1;
inline constexpr uint32_t kDiscardPadding = 0x75A2;
inline constexpr uint32_t kCues = 0x1C53BB6B;
inline constexpr uint32_t kChapters = 0x1043A770;
inline constexpr uint32_t kTags = 0x1254C367;
inline constexpr uint32_t kAttachments = 0x1941A469;

inline constexpr int64_t kUnknownSize = -1;

// An element's header: its ID, its data size (kUnknownSize when all value bits are set) and the
// header's length in bytes.
struct ElementHeader {
  uint32_t id = 0;
  int64_t size = 0;
  int header_bytes = 0;
};

enum class ReadResult { kOk, kNeedMore, kInvalid };

// Reads the element header at the start of `bytes` (IDs of 1 to 4 bytes, sizes of 1 to 8).
ReadResult ReadElementHeader(absl::string_view bytes, ElementHeader* header);

// Unsigned and signed big-endian integers of 0 to 8 bytes (RFC 8794 7.1, 7.2).
uint64_t ReadUnsigned(absl::string_view payload);
int64_t ReadSigned(absl::string_view payload);
// A big-endian IEEE float of 4 or 8 bytes (RFC 8794 7.3); 0 for any other length.
double ReadFloat(absl::string_view payload);

// Calls `visit` with each child of a master element whose data is all of `payload`, in order;
// stops at the first error `visit` returns. INVALID_ARGUMENT naming `what` when a child's header
// is malformed, its size unknown, or it runs past the end.
absl::Status ForEachChild(absl::string_view payload, absl::string_view what,
                          const std::function<absl::Status(uint32_t, absl::string_view)>& visit);

// A SimpleBlock's or Block's header and its frames (pointing into the block's bytes).
struct Block {
  uint64_t track_number = 0;
  int16_t relative_timestamp = 0;
  std::vector<absl::string_view> frames;
};
// Parses a block (no, Xiph, fixed-size or EBML lacing). INVALID_ARGUMENT saying what is wrong.
absl::Status ParseBlock(absl::string_view bytes, Block* block);

}  // namespace speechllm::streaming::ebml

#endif  // SPEECHLLM_STREAMING_EBML_H_
