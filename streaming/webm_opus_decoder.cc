#include "streaming/webm_opus_decoder.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace speechllm::streaming {
namespace {

using ebml::ElementHeader;
using ebml::kUnknownSize;
using ebml::ReadResult;

// Elements held whole before they are handled (Tracks, blocks) may be at most this large: audio
// blocks stay far below it, and it bounds what one stream can make the server hold.
constexpr int64_t kMaxHeldElementBytes = 4 << 20;
constexpr char kMagic[] = "\x1A\x45\xDF\xA3";
constexpr uint64_t kAudioTrackType = 2;

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("WEBM_OPUS: ", message));
}

std::string IdName(uint32_t id) { return absl::StrFormat("0x%X", id); }

bool IsSegmentChild(uint32_t id) {
  return id == ebml::kSeekHead || id == ebml::kInfo || id == ebml::kTracks ||
         id == ebml::kCluster || id == ebml::kCues || id == ebml::kChapters || id == ebml::kTags ||
         id == ebml::kAttachments;
}

// Whether an element may lie inside an open element of unknown size (RFC 8794 6.2: such an
// element ends where one that cannot be its child begins).
bool MayBeChildOf(uint32_t parent, uint32_t id) {
  if (id == ebml::kEbmlHeader || id == ebml::kSegment) return false;
  return parent != ebml::kCluster || !IsSegmentChild(id);
}

}  // namespace

WebmOpusDecoder::WebmOpusDecoder(const AudioFormatSpec& declared, int output_rate_hz)
    : declared_(declared), output_rate_hz_(output_rate_hz) {}

absl::Status WebmOpusDecoder::Decode(absl::string_view bytes, std::vector<float>* out,
                                     int64_t* /*clipped*/) {
  if (bytes.empty()) return absl::OkStatus();
  decode_start_ = out->size();
  buffer_.append(bytes.data(), bytes.size());
  if (buffer_offset_ == 0 && !saw_header_) {
    const size_t n = std::min<size_t>(4, buffer_.size());
    if (buffer_.compare(0, n, kMagic, n) != 0) {
      return Invalid(absl::StrCat(
          "the stream does not start with an EBML header (1A 45 DF A3); it starts with \"",
          absl::CHexEscape(absl::string_view(buffer_).substr(0, 4)), "\""));
    }
  }
  return Parse(out);
}

absl::Status WebmOpusDecoder::Parse(std::vector<float>* out) {
  size_t pos = 0;
  absl::Status status;
  while (status.ok()) {
    if (skip_remaining_ > 0) {
      const int64_t take = std::min<int64_t>(skip_remaining_, buffer_.size() - pos);
      pos += static_cast<size_t>(take);
      skip_remaining_ -= take;
      if (skip_remaining_ > 0) break;
    }
    const int64_t offset = buffer_offset_ + static_cast<int64_t>(pos);
    ElementHeader header;
    const ReadResult read =
        ebml::ReadElementHeader(absl::string_view(buffer_).substr(pos), &header);
    if (read == ReadResult::kNeedMore) break;
    if (read == ReadResult::kInvalid) {
      status = Invalid(absl::StrCat("a malformed element header at byte ", offset));
      break;
    }
    // Close what ended here: known sizes at their end, unknown ones at an element that cannot be
    // their child; either may uncover the other (a sized Segment around an unsized Cluster).
    while (!open_.empty() && (open_.back().end >= 0 ? offset >= open_.back().end
                                                    : !MayBeChildOf(open_.back().id, header.id))) {
      open_.pop_back();
    }
    const int64_t end =
        header.size == kUnknownSize ? -1 : offset + header.header_bytes + header.size;
    if (end >= 0 && !open_.empty() && open_.back().end >= 0 && end > open_.back().end) {
      status = Invalid(absl::StrCat("element ", IdName(header.id), " at byte ", offset,
                                    " runs past the end of its parent ", IdName(open_.back().id)));
      break;
    }
    const uint32_t parent = open_.empty() ? 0 : open_.back().id;
    if ((header.id == ebml::kSegment && parent == 0) ||
        (header.id == ebml::kCluster && parent == ebml::kSegment)) {
      if (header.id == ebml::kSegment) {
        if (!saw_header_) {
          status = Invalid("a Segment before the EBML header");
          break;
        }
        ++segments_;  // a new Segment (chained streams) starts with its own Tracks
        saw_tracks_ = false;
        track_number_ = 0;
        link_.reset();
      }
      open_.push_back({header.id, end});
      pos += header.header_bytes;
      continue;
    }
    const bool hold = (header.id == ebml::kEbmlHeader && parent == 0) ||
                      (header.id == ebml::kTracks && parent == ebml::kSegment) ||
                      ((header.id == ebml::kSimpleBlock || header.id == ebml::kBlockGroup) &&
                       parent == ebml::kCluster);
    if (header.size == kUnknownSize) {
      status = Invalid(absl::StrCat("element ", IdName(header.id), " at byte ", offset,
                                    " has an unknown size (only Segments and Clusters may)"));
      break;
    }
    if (!hold) {  // skipped without being held, whatever its size
      pos += header.header_bytes;
      skip_remaining_ = header.size;
      skipping_id_ = header.id;
      continue;
    }
    if (header.size > kMaxHeldElementBytes) {
      status = Invalid(absl::StrCat("element ", IdName(header.id), " at byte ", offset, " holds ",
                                    header.size, " bytes, more than the ", kMaxHeldElementBytes,
                                    " accepted"));
      break;
    }
    if (buffer_.size() - pos < header.header_bytes + static_cast<size_t>(header.size)) break;
    status = HandleElement(header.id,
                           absl::string_view(buffer_).substr(pos + header.header_bytes,
                                                             static_cast<size_t>(header.size)),
                           out);
    pos += header.header_bytes + static_cast<size_t>(header.size);
  }
  buffer_.erase(0, pos);
  buffer_offset_ += static_cast<int64_t>(pos);
  return status;
}

absl::Status WebmOpusDecoder::HandleElement(uint32_t id, absl::string_view payload,
                                            std::vector<float>* out) {
  if (id == ebml::kEbmlHeader) return HandleEbmlHeader(payload);
  if (id == ebml::kTracks) return HandleTracks(payload);
  if (id == ebml::kSimpleBlock) return HandleBlock(payload, 0, out);
  absl::string_view block;
  bool has_block = false;
  int64_t discard_padding_ns = 0;
  absl::Status status =
      ebml::ForEachChild(payload, "a BlockGroup", [&](uint32_t child, absl::string_view data) {
        if (child == ebml::kBlock) {
          block = data;
          has_block = true;
        } else if (child == ebml::kDiscardPadding) {
          discard_padding_ns = ebml::ReadSigned(data);
        }
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  if (!has_block) return Invalid("a BlockGroup without a Block");
  return HandleBlock(block, discard_padding_ns, out);
}

absl::Status WebmOpusDecoder::HandleEbmlHeader(absl::string_view payload) {
  std::string doc_type = "matroska";  // the default DocType (RFC 8794 11.2.6)
  absl::Status status =
      ebml::ForEachChild(payload, "the EBML header", [&](uint32_t id, absl::string_view data) {
        if (id == ebml::kDocType) doc_type = std::string(data.substr(0, data.find('\0')));
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  if (doc_type != "webm" && doc_type != "matroska") {
    return Invalid(absl::StrCat("the EBML DocType is \"", absl::CHexEscape(doc_type),
                                "\", not webm or matroska"));
  }
  saw_header_ = true;
  return absl::OkStatus();
}

absl::Status WebmOpusDecoder::HandleTracks(absl::string_view payload) {
  if (saw_tracks_) return absl::OkStatus();  // one Tracks per Segment; a repeat is ignored
  saw_tracks_ = true;
  bool audio_seen = false;
  absl::Status status =
      ebml::ForEachChild(payload, "Tracks", [&](uint32_t id, absl::string_view entry) {
        if (id != ebml::kTrackEntry || track_number_ != 0) return absl::OkStatus();
        uint64_t number = 0, type = 0;
        std::string codec;
        absl::string_view codec_private;
        bool encoded = false;
        absl::Status fields =
            ebml::ForEachChild(entry, "a TrackEntry", [&](uint32_t field, absl::string_view data) {
              if (field == ebml::kTrackNumber) number = ebml::ReadUnsigned(data);
              if (field == ebml::kTrackType) type = ebml::ReadUnsigned(data);
              if (field == ebml::kCodecId) codec = std::string(data.substr(0, data.find('\0')));
              if (field == ebml::kCodecPrivate) codec_private = data;
              if (field == ebml::kContentEncodings) encoded = true;
              return absl::OkStatus();
            });
        if (!fields.ok()) return fields;
        if (type != kAudioTrackType) return absl::OkStatus();
        audio_seen = true;
        if (codec != "A_OPUS") {
          absl::StrAppend(&other_codecs_, other_codecs_.empty() ? "" : ", ",
                          absl::CHexEscape(codec));
          return absl::OkStatus();
        }
        if (number == 0) return Invalid("the Opus track's TrackNumber is 0");
        if (encoded) {
          return Invalid("the Opus track is compressed or encrypted (ContentEncodings)");
        }
        absl::StatusOr<OpusHead> head = ParseOpusHead(codec_private, "WEBM_OPUS");
        if (!head.ok()) {
          return Invalid("the Opus track's CodecPrivate is not an OpusHead (RFC 7845 5.1)");
        }
        absl::StatusOr<std::unique_ptr<OpusLinkDecoder>> link =
            OpusLinkDecoder::Create(*head, declared_, output_rate_hz_, "WEBM_OPUS");
        if (!link.ok()) return link.status();
        link_ = *std::move(link);
        track_number_ = number;
        return absl::OkStatus();
      });
  if (!status.ok()) return status;
  if (track_number_ != 0) return absl::OkStatus();
  if (audio_seen) {
    return UnsupportedAudioError(absl::StrCat("WEBM_OPUS: the audio track's codec is ",
                                              other_codecs_, "; only Opus (A_OPUS) is decoded"));
  }
  return Invalid("the stream has no audio track");
}

absl::Status WebmOpusDecoder::HandleBlock(absl::string_view bytes, int64_t discard_padding_ns,
                                          std::vector<float>* out) {
  if (!saw_tracks_) return Invalid("a block before the Tracks element");
  ebml::Block block;
  if (absl::Status status = ebml::ParseBlock(bytes, &block); !status.ok()) return status;
  if (block.track_number != track_number_) return absl::OkStatus();  // another track's
  block_samples_.clear();
  for (absl::string_view frame : block.frames) {
    if (absl::Status status = link_->DecodePacket(
            frame, ++packets_, std::numeric_limits<int64_t>::max(), &block_samples_);
        !status.ok()) {
      return status;
    }
  }
  // DiscardPadding (RFC 9559 5.1.3.5.5): nanoseconds of padding to drop at the block's end, or at
  // its start when negative; bounded so that the products cannot overflow. At the end it is
  // rounded as Ogg Opus rounds its end trimming: the link's 48 kHz samples less the pre-skip and
  // the padding, at the output rate.
  const int64_t padding_ns =
      std::clamp<int64_t>(discard_padding_ns, -1'000'000'000'000, 1'000'000'000'000);
  const auto block_size = static_cast<int64_t>(block_samples_.size());
  int64_t begin = 0, end = block_size;
  if (padding_ns > 0) {
    const int64_t padding_48k = (padding_ns * 48 + 500'000) / 1'000'000;
    const int64_t total = std::max<int64_t>(
        0,
        ((link_->decoded_48k() - link_->head().pre_skip - padding_48k) * output_rate_hz_ + 24000) /
            48000);
    end = std::clamp<int64_t>(total - (link_->emitted() - block_size), 0, block_size);
  } else if (padding_ns < 0) {
    begin = std::min<int64_t>(block_size,
                              (-padding_ns * output_rate_hz_ + 500'000'000) / 1'000'000'000);
  }
  if (begin < end) {
    out->insert(out->end(), block_samples_.begin() + begin, block_samples_.begin() + end);
  }
  return CheckSamplesPerDecode("WEBM_OPUS", static_cast<int64_t>(out->size() - decode_start_),
                               max_samples_per_decode_, output_rate_hz_,
                               absl::StrCat("packet ", packets_));
}

absl::Status WebmOpusDecoder::Finish(std::vector<float>* /*out*/) {
  if (skip_remaining_ > 0) {
    return Invalid(absl::StrCat("the stream ends inside element ", IdName(skipping_id_), " (",
                                skip_remaining_, " of its bytes never came)"));
  }
  if (!buffer_.empty()) {
    return Invalid(absl::StrCat("the stream ends inside an element: ", buffer_.size(),
                                " bytes of an incomplete (truncated) element at byte ",
                                buffer_offset_));
  }
  if (!saw_header_) return Invalid("no EBML header in the input");
  if (segments_ == 0) return Invalid("the stream ended before its Segment");
  if (!saw_tracks_) return Invalid("the stream ended before its Tracks element");
  return absl::OkStatus();  // a Segment or Cluster cut at an element boundary is accepted
}

}  // namespace speechllm::streaming
