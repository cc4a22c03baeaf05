// OpusLinkDecoder: the decoding of one Opus stream that an OpusHead describes (an Ogg Opus link,
// RFC 7845, or a WebM Opus track): libopus's multistream decoder at the output rate, output gain,
// pre-skip dropped, channels averaged to mono, each packet trimmed as its container says. Owned by
// the container's decoder (OggOpusDecoder, WebmOpusDecoder); that stream's reader thread only.
#ifndef SPEECHLLM_STREAMING_OPUS_LINK_DECODER_H_
#define SPEECHLLM_STREAMING_OPUS_LINK_DECODER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "streaming/audio_decoder.h"

struct OpusMSDecoder;

namespace speechllm::streaming {

// The identification header (RFC 7845 section 5.1; WebM carries it as the track's CodecPrivate).
struct OpusHead {
  int channels = 0;
  int pre_skip = 0;  // 48 kHz samples
  uint32_t input_rate_hz = 0;
  int output_gain_q8 = 0;  // dB in Q7.8
  int mapping_family = 0;
  int streams = 1;
  int coupled_streams = 0;
  uint8_t mapping[8] = {0, 1};
};
// INVALID_ARGUMENT starting with `encoding_name` and saying what is wrong; families 0, 1 and 255
// with 1 to 8 channels.
absl::StatusOr<OpusHead> ParseOpusHead(absl::string_view packet, absl::string_view encoding_name);

class OpusLinkDecoder {
 public:
  // A decoder for `head` at `output_rate_hz` (8000, 12000, 16000, 24000 or 48000). `declared` is
  // the client's AudioFormatSpec: a non-zero rate must be 48000 or the head's input rate, non-zero
  // channels the head's count. INVALID_ARGUMENT starting with `encoding_name` otherwise.
  static absl::StatusOr<std::unique_ptr<OpusLinkDecoder>> Create(const OpusHead& head,
                                                                 const AudioFormatSpec& declared,
                                                                 int output_rate_hz,
                                                                 absl::string_view encoding_name);
  ~OpusLinkDecoder();
  OpusLinkDecoder(const OpusLinkDecoder&) = delete;
  OpusLinkDecoder& operator=(const OpusLinkDecoder&) = delete;

  // Decodes packet number `packet_number` (for messages) and appends its mono samples less what
  // is left of the pre-skip, never more than `max_total_emitted` samples of the link in all (Ogg's
  // end trimming; INT64_MAX: none). INVALID_ARGUMENT for an empty or corrupt packet.
  absl::Status DecodePacket(absl::string_view packet, int64_t packet_number,
                            int64_t max_total_emitted, std::vector<float>* out);

  const OpusHead& head() const { return head_; }
  int output_rate_hz() const { return output_rate_hz_; }
  int64_t emitted() const { return emitted_; }          // samples appended, after the pre-skip
  int64_t decoded_48k() const { return decoded_48k_; }  // packets' samples at 48 kHz, pre-skip in

 private:
  OpusLinkDecoder(OpusMSDecoder* decoder, const OpusHead& head, int output_rate_hz,
                  absl::string_view encoding_name);

  OpusMSDecoder* decoder_;
  const OpusHead head_;
  const int output_rate_hz_;
  const std::string encoding_name_;
  int64_t skip_remaining_;  // pre-skip still to drop, output-rate samples
  int64_t emitted_ = 0;
  int64_t decoded_48k_ = 0;
  std::vector<float> pcm_;  // interleaved scratch, 120 ms at the output rate
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_OPUS_LINK_DECODER_H_
