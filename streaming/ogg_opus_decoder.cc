#include "streaming/ogg_opus_decoder.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace speechllm::streaming {
namespace {

// Packets larger than this (summed over the pages that carry them) are refused: Opus audio
// packets stay far below it (RFC 6716 3.4), and it bounds OpusTags (cover art) too.
constexpr long kMaxPendingPacketBytes = 4 << 20;

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("OGG_OPUS: ", message));
}

// The input's first pages all belong to other codecs' logical streams.
absl::Status NoOpusStream(int64_t ignored_streams) {
  return Invalid(absl::StrCat("none of the ", ignored_streams,
                              " logical streams is Opus (no first page holds an OpusHead)"));
}

}  // namespace

OggOpusDecoder::OggOpusDecoder(const AudioFormatSpec& declared, int output_rate_hz)
    : declared_(declared), output_rate_hz_(output_rate_hz) {
  ogg_sync_init(&sync_);
}

OggOpusDecoder::~OggOpusDecoder() {
  CloseLink();
  if (stream_initialized_) ogg_stream_clear(&stream_);
  ogg_sync_clear(&sync_);
}

void OggOpusDecoder::CloseLink() { link_.reset(); }

absl::Status OggOpusDecoder::Decode(absl::string_view bytes, std::vector<float>* out,
                                    int64_t* clipped) {
  if (bytes.empty()) return absl::OkStatus();
  decode_start_ = out->size();
  char* buffer = ogg_sync_buffer(&sync_, static_cast<long>(bytes.size()));
  if (buffer == nullptr) return absl::ResourceExhaustedError("OGG_OPUS: ogg_sync_buffer failed");
  std::memcpy(buffer, bytes.data(), bytes.size());
  ogg_sync_wrote(&sync_, static_cast<long>(bytes.size()));
  if (pages_ == 0 && state_ == State::kNoStream && sync_.fill - sync_.returned >= 4 &&
      std::memcmp(sync_.data + sync_.returned, "OggS", 4) != 0) {
    return Invalid(
        absl::StrCat("the stream does not start with an Ogg page (\"OggS\"); it starts "
                     "with \"",
                     absl::CHexEscape(absl::string_view(
                         reinterpret_cast<const char*>(sync_.data + sync_.returned), 4)),
                     "\""));
  }
  ogg_page page;
  while (true) {
    const int result = ogg_sync_pageout(&sync_, &page);
    if (result == 0) return absl::OkStatus();  // needs more bytes
    if (result < 0) {
      return Invalid(absl::StrCat(
          "bytes that are not an Ogg page after page ", pages_,
          " (no \"OggS\" capture pattern where a page must start, or a page CRC mismatch)"));
    }
    if (absl::Status status = HandlePage(&page, out); !status.ok()) return status;
  }
}

absl::Status OggOpusDecoder::HandlePage(ogg_page* page, std::vector<float>* out) {
  const int serial = ogg_page_serialno(page);
  // Every logical stream's first page comes before any other page of the link (RFC 3533 4): once
  // our headers are through, a first page begins the next link of a chained stream, whether or
  // not our end-of-stream page came.
  const bool next_link = ogg_page_bos(page) && (state_ == State::kEnded || state_ == State::kAudio);
  if (state_ == State::kNoStream || next_link) {
    if (!ogg_page_bos(page)) {
      if (ignored_streams_ > 0) return NoOpusStream(ignored_streams_);
      return Invalid("the stream does not start with a beginning-of-stream page");
    }
    // A first page holds exactly the stream's first header packet. Another codec's stream
    // multiplexed beside the Opus one (an Ogg Skeleton, say) is skipped (RFC 7845 3).
    if (page->body_len < 8 || std::memcmp(page->body, "OpusHead", 8) != 0) {
      ++ignored_streams_;
      return absl::OkStatus();
    }
    if (state_ == State::kAudio && packet_continues_) {
      return Invalid(absl::StrCat("the next chained link began inside a packet of stream ",
                                  stream_.serialno, " (its last page never came)"));
    }
    if (!stream_initialized_) {
      ogg_stream_init(&stream_, serial);
      stream_initialized_ = true;
    } else {
      ogg_stream_reset_serialno(&stream_, serial);  // the next link of a chained stream
    }
    CloseLink();
    state_ = State::kHead;
    packet_continues_ = false;
  } else if (serial != stream_.serialno) {
    return absl::OkStatus();  // another multiplexed logical stream
  } else if (state_ == State::kEnded) {
    return Invalid(absl::StrCat("a page after the end-of-stream page of stream ", serial));
  }
  if (ogg_stream_pagein(&stream_, page) != 0) {
    return Invalid(absl::StrCat("page ", pages_, " was rejected (bad version or serial number)"));
  }
  ++pages_;
  if (stream_.body_fill - stream_.body_returned > kMaxPendingPacketBytes) {
    return Invalid(absl::StrCat("a packet is larger than ", kMaxPendingPacketBytes, " bytes"));
  }
  ogg_packet packet;
  while (true) {
    const int result = ogg_stream_packetout(&stream_, &packet);
    if (result == 0) break;
    if (result < 0) {
      return Invalid(absl::StrCat("page sequence gap before page ", pages_ - 1,
                                  ": a page is missing or was corrupted"));
    }
    if (absl::Status status = HandlePacket(packet, out); !status.ok()) return status;
  }
  // Lacing values of a packet not complete yet (libogg keeps them past the last complete one):
  // judged on the stream's state, as a page without segments continues nothing.
  packet_continues_ = stream_.lacing_fill > stream_.lacing_returned;
  // The first page that completes audio packets gives the link's start (RFC 7845 4.5): its
  // granule position less the samples completed so far; a stream cut from a longer one starts
  // above zero.
  if (state_ == State::kAudio && link_start_granule_ < 0 && link_->decoded_48k() > 0 &&
      ogg_page_granulepos(page) >= 0) {
    link_start_granule_ = std::max<int64_t>(0, ogg_page_granulepos(page) - link_->decoded_48k());
  }
  if (ogg_page_eos(page)) {
    if (state_ != State::kAudio) {
      return Invalid("the stream ended before its OpusHead and OpusTags headers");
    }
    if (packet_continues_) {
      return Invalid(
          absl::StrCat("the end-of-stream page of stream ", serial, " ends inside a packet"));
    }
    state_ = State::kEnded;
    CloseLink();
  }
  return absl::OkStatus();
}

absl::Status OggOpusDecoder::HandlePacket(const ogg_packet& packet, std::vector<float>* out) {
  const absl::string_view data(reinterpret_cast<const char*>(packet.packet),
                               static_cast<size_t>(packet.bytes));
  switch (state_) {
    case State::kHead:
      if (absl::Status status = StartLink(data); !status.ok()) return status;
      state_ = State::kTags;
      return absl::OkStatus();
    case State::kTags:
      if (data.substr(0, 8) != "OpusTags") {
        return Invalid("the second packet is not an OpusTags comment header (RFC 7845 5.2)");
      }
      state_ = State::kAudio;
      return absl::OkStatus();
    case State::kAudio:
      return DecodeAudio(packet, out);
    default:
      return Invalid("a packet outside a stream");
  }
}

absl::Status OggOpusDecoder::StartLink(absl::string_view head_packet) {
  absl::StatusOr<OpusHead> head = ParseOpusHead(head_packet, "OGG_OPUS");
  if (!head.ok()) return head.status();
  absl::StatusOr<std::unique_ptr<OpusLinkDecoder>> link =
      OpusLinkDecoder::Create(*head, declared_, output_rate_hz_, "OGG_OPUS");
  if (!link.ok()) return link.status();
  link_ = *std::move(link);
  link_start_granule_ = -1;
  return absl::OkStatus();
}

absl::Status OggOpusDecoder::DecodeAudio(const ogg_packet& packet, std::vector<float>* out) {
  ++packets_;
  // End trimming (RFC 7845 4.4): the end-of-stream page's granule position counts the 48 kHz
  // samples of the link from its start (zero unless known above zero), pre-skip included.
  int64_t max_total = std::numeric_limits<int64_t>::max();
  if (packet.e_o_s && packet.granulepos >= 0) {
    // The client's granule position, bounded so that the product cannot overflow.
    const int64_t granule =
        std::min<int64_t>(packet.granulepos, std::numeric_limits<int64_t>::max() / 48000 - 48000);
    const int64_t start = std::clamp<int64_t>(link_start_granule_, 0, granule);
    max_total = std::max<int64_t>(
        0, ((granule - start - link_->head().pre_skip) * output_rate_hz_ + 24000) / 48000);
  }
  const absl::string_view data(reinterpret_cast<const char*>(packet.packet),
                               static_cast<size_t>(std::max<long>(0, packet.bytes)));
  if (absl::Status status = link_->DecodePacket(data, packets_, max_total, out); !status.ok()) {
    return status;
  }
  return CheckSamplesPerDecode("OGG_OPUS", static_cast<int64_t>(out->size() - decode_start_),
                               max_samples_per_decode_, output_rate_hz_,
                               absl::StrCat("packet ", packets_));
}

absl::Status OggOpusDecoder::Finish(std::vector<float>* out) {
  const int held = sync_.fill - sync_.returned;
  if (held > 0) {
    return Invalid(absl::StrCat("the stream ends inside a page: ", held,
                                " bytes of an incomplete (truncated) Ogg page after page ",
                                pages_));
  }
  if (state_ == State::kNoStream) {
    return ignored_streams_ > 0 ? NoOpusStream(ignored_streams_)
                                : Invalid("no Ogg page in the input");
  }
  if (state_ == State::kHead || state_ == State::kTags) {
    return Invalid("the stream ended before its OpusHead and OpusTags headers");
  }
  if (state_ == State::kAudio && packet_continues_) {
    return Invalid("the stream ends inside a packet continued on a page that never came");
  }
  return absl::OkStatus();  // a missing end-of-stream page is accepted (no end trimming)
}

}  // namespace speechllm::streaming
