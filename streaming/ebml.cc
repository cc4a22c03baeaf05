#include "streaming/ebml.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace speechllm::streaming::ebml {
namespace {

// A variable-length integer (RFC 8794 4): its length is one more than the leading zero bits of
// its first byte. `value` keeps the length marker when `keep_marker` (element IDs) and drops it
// otherwise (sizes); `all_ones` tells whether every value bit is set (an unknown size).
ReadResult ReadVint(absl::string_view bytes, int max_length, bool keep_marker, uint64_t* value,
                    int* length, bool* all_ones) {
  if (bytes.empty()) return ReadResult::kNeedMore;
  const auto first = static_cast<uint8_t>(bytes[0]);
  int n = 1;
  while (n <= 8 && (first & (0x80 >> (n - 1))) == 0) ++n;
  if (n > max_length) return ReadResult::kInvalid;
  if (bytes.size() < static_cast<size_t>(n)) return ReadResult::kNeedMore;
  const uint64_t marker = uint64_t{0x80} >> (n - 1);
  uint64_t v = keep_marker ? first : (first & (marker - 1));
  bool ones = (first & (marker - 1)) == marker - 1;
  for (int i = 1; i < n; ++i) {
    const auto b = static_cast<uint8_t>(bytes[i]);
    v = (v << 8) | b;
    ones = ones && b == 0xFF;
  }
  *value = v;
  *length = n;
  *all_ones = ones;
  return ReadResult::kOk;
}

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("WEBM_OPUS: ", message));
}

}  // namespace

ReadResult ReadElementHeader(absl::string_view bytes, ElementHeader* header) {
  uint64_t id = 0, size = 0;
  int id_length = 0, size_length = 0;
  bool id_ones = false, size_unknown = false;
  if (ReadResult r = ReadVint(bytes, 4, /*keep_marker=*/true, &id, &id_length, &id_ones);
      r != ReadResult::kOk) {
    return r;
  }
  if (id_ones) return ReadResult::kInvalid;  // reserved IDs (RFC 8794 5)
  if (ReadResult r = ReadVint(bytes.substr(id_length), 8, /*keep_marker=*/false, &size,
                              &size_length, &size_unknown);
      r != ReadResult::kOk) {
    return r;
  }
  header->id = static_cast<uint32_t>(id);
  header->size = size_unknown ? kUnknownSize : static_cast<int64_t>(size);
  header->header_bytes = id_length + size_length;
  return ReadResult::kOk;
}

uint64_t ReadUnsigned(absl::string_view payload) {
  uint64_t v = 0;
  for (char c : payload.substr(0, 8)) v = (v << 8) | static_cast<uint8_t>(c);
  return v;
}

int64_t ReadSigned(absl::string_view payload) {
  if (payload.empty()) return 0;
  payload = payload.substr(0, 8);
  uint64_t v = ReadUnsigned(payload);
  const int bits = static_cast<int>(payload.size()) * 8;
  if (bits < 64 && (v >> (bits - 1)) != 0) v |= ~uint64_t{0} << bits;  // sign-extend
  return static_cast<int64_t>(v);
}

double ReadFloat(absl::string_view payload) {
  const uint64_t bits = ReadUnsigned(payload);
  if (payload.size() == 4) {
    const auto narrow = static_cast<uint32_t>(bits);
    float f;
    std::memcpy(&f, &narrow, 4);
    return f;
  }
  if (payload.size() != 8) return 0;
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

absl::Status ForEachChild(absl::string_view payload, absl::string_view what,
                          const std::function<absl::Status(uint32_t, absl::string_view)>& visit) {
  while (!payload.empty()) {
    ElementHeader header;
    if (ReadElementHeader(payload, &header) != ReadResult::kOk || header.size == kUnknownSize ||
        static_cast<uint64_t>(header.size) > payload.size() - header.header_bytes) {
      return Invalid(absl::StrCat("a malformed element inside ", what));
    }
    if (absl::Status status =
            visit(header.id, payload.substr(header.header_bytes, static_cast<size_t>(header.size)));
        !status.ok()) {
      return status;
    }
    payload.remove_prefix(header.header_bytes + static_cast<size_t>(header.size));
  }
  return absl::OkStatus();
}

absl::Status ParseBlock(absl::string_view bytes, Block* block) {
  uint64_t track = 0;
  int length = 0;
  bool ones = false;
  if (ReadVint(bytes, 8, /*keep_marker=*/false, &track, &length, &ones) != ReadResult::kOk ||
      bytes.size() < static_cast<size_t>(length) + 3) {
    return Invalid("a block shorter than its header");
  }
  block->track_number = track;
  block->relative_timestamp = static_cast<int16_t>(ReadUnsigned(bytes.substr(length, 2)));
  const int lacing = (static_cast<uint8_t>(bytes[length + 2]) >> 1) & 3;
  absl::string_view data = bytes.substr(length + 3);
  block->frames.clear();
  if (lacing == 0) {
    block->frames.push_back(data);
    return absl::OkStatus();
  }
  if (data.empty()) return Invalid("a laced block without its frame count");
  const int count = static_cast<uint8_t>(data[0]) + 1;
  data.remove_prefix(1);
  std::vector<uint64_t> sizes;
  if (lacing == 2) {  // fixed-size lacing
    if (data.size() % count != 0) {
      return Invalid(absl::StrCat("a fixed-size laced block of ", data.size(),
                                  " bytes does not split into ", count, " frames"));
    }
    sizes.assign(count - 1, data.size() / count);
  } else if (lacing == 1) {  // Xiph lacing: each size a run of 255s and a final byte
    for (int i = 0; i + 1 < count; ++i) {
      uint64_t size = 0;
      while (true) {
        if (data.empty()) return Invalid("a Xiph-laced block's sizes run past its end");
        const auto b = static_cast<uint8_t>(data[0]);
        data.remove_prefix(1);
        size += b;
        if (b != 255) break;
      }
      sizes.push_back(size);
    }
  } else {  // EBML lacing: the first size, then signed differences
    int64_t size = 0;
    for (int i = 0; i + 1 < count; ++i) {
      uint64_t raw = 0;
      if (ReadVint(data, 8, /*keep_marker=*/false, &raw, &length, &ones) != ReadResult::kOk) {
        return Invalid("an EBML-laced block's sizes are malformed");
      }
      data.remove_prefix(length);
      // A difference is stored with a bias of half the range (RFC 9559 10.3.3); `size` stays
      // within the block's bytes, so the sum cannot overflow.
      const int64_t bias = (int64_t{1} << (7 * length - 1)) - 1;
      size = i == 0 ? static_cast<int64_t>(raw) : size + (static_cast<int64_t>(raw) - bias);
      if (size < 0) return Invalid("an EBML-laced block has a negative frame size");
      if (static_cast<uint64_t>(size) > data.size()) {
        return Invalid("a laced block's frame sizes run past its end");
      }
      sizes.push_back(static_cast<uint64_t>(size));
    }
  }
  for (uint64_t size : sizes) {
    if (size > data.size()) return Invalid("a laced block's frame sizes run past its end");
    block->frames.push_back(data.substr(0, static_cast<size_t>(size)));
    data.remove_prefix(static_cast<size_t>(size));
  }
  block->frames.push_back(data);  // the last frame takes the rest
  return absl::OkStatus();
}

}  // namespace speechllm::streaming::ebml
