// WebmOpusDecoder: a WebM (Matroska) byte stream with an Opus audio track, as browsers'
// MediaRecorder and muxers such as mkvmerge write it, split anywhere across Decode() calls.
// Owned by one stream's AudioDecoder; its reader thread only.
#ifndef SPEECHLLM_STREAMING_WEBM_OPUS_DECODER_H_
#define SPEECHLLM_STREAMING_WEBM_OPUS_DECODER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "streaming/audio_decoder.h"
#include "streaming/ebml.h"
#include "streaming/opus_link_decoder.h"

namespace speechllm::streaming {

// An incremental EBML parser walks the Segment and its Clusters (known or unknown sizes, the live
// form MediaRecorder streams), skips what audio does not need, and feeds the first A_OPUS track's
// frames (any lacing) to an OpusLinkDecoder; BlockGroups' DiscardPadding trims the end.
class WebmOpusDecoder : public AudioDecoder {
 public:
  // `declared` is checked against the track's OpusHead (as for Ogg Opus); `output_rate_hz` is one
  // of libopus's rates (8000, 12000, 16000, 24000, 48000).
  WebmOpusDecoder(const AudioFormatSpec& declared, int output_rate_hz);

  absl::Status Decode(absl::string_view bytes, std::vector<float>* out, int64_t* clipped) override;
  absl::Status Finish(std::vector<float>* out) override;
  void LimitSamplesPerDecode(int64_t max_samples) override {
    max_samples_per_decode_ = max_samples;
  }

 private:
  // An element being walked into: its ID and the stream offset where its data ends (-1: unknown
  // size, ended by the first element that cannot be its child).
  struct OpenElement {
    uint32_t id;
    int64_t end;
  };

  // Parses what `buffer_` holds; returns when it needs more bytes.
  absl::Status Parse(std::vector<float>* out);
  // Handles an element held whole (its header stripped).
  absl::Status HandleElement(uint32_t id, absl::string_view payload, std::vector<float>* out);
  absl::Status HandleEbmlHeader(absl::string_view payload);
  absl::Status HandleTracks(absl::string_view payload);
  absl::Status HandleBlock(absl::string_view block, int64_t discard_padding_ns,
                           std::vector<float>* out);

  const AudioFormatSpec declared_;
  const int output_rate_hz_;
  int64_t max_samples_per_decode_ = 0;  // 0: no bound
  size_t decode_start_ = 0;             // out->size() when the current Decode() call began

  std::string buffer_;          // bytes received and not yet parsed
  int64_t buffer_offset_ = 0;   // stream offset of buffer_[0]
  int64_t skip_remaining_ = 0;  // bytes of a skipped element still to come
  uint32_t skipping_id_ = 0;    // that element's ID, for messages
  std::vector<OpenElement> open_;
  bool saw_header_ = false;    // an EBML header with DocType webm or matroska
  bool saw_tracks_ = false;    // of the current Segment
  uint64_t track_number_ = 0;  // the Opus track's number (0: none yet)
  std::string other_codecs_;   // audio codecs seen that are not Opus, for messages
  std::unique_ptr<OpusLinkDecoder> link_;
  int64_t packets_ = 0;  // Opus frames decoded, for messages
  int64_t segments_ = 0;
  std::vector<float> block_samples_;  // one block's samples before its DiscardPadding
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_WEBM_OPUS_DECODER_H_
