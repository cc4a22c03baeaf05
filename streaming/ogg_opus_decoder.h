// OggOpusDecoder: a continuous Ogg Opus byte stream (RFC 7845), split anywhere across Decode()
// calls and decoded with libogg and libopus. Owned by one stream's AudioDecoder; its reader
// thread only.
#ifndef SPEECHLLM_STREAMING_OGG_OPUS_DECODER_H_
#define SPEECHLLM_STREAMING_OGG_OPUS_DECODER_H_

#include <ogg/ogg.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "streaming/audio_decoder.h"
#include "streaming/opus_link_decoder.h"

namespace speechllm::streaming {

// Pages go through libogg (ogg_sync / ogg_stream) into an OpusLinkDecoder per link (libopus at the
// output rate, channels averaged to mono, pre-skip dropped, output gain applied), the end trimmed
// by the last page's granule position. Chained links are decoded in turn; pages of other
// multiplexed logical streams are ignored.
class OggOpusDecoder : public AudioDecoder {
 public:
  // `declared` is checked against each OpusHead (AudioFormatSpec); `output_rate_hz` is one of
  // libopus's rates (8000, 12000, 16000, 24000, 48000).
  OggOpusDecoder(const AudioFormatSpec& declared, int output_rate_hz);
  ~OggOpusDecoder() override;
  OggOpusDecoder(const OggOpusDecoder&) = delete;
  OggOpusDecoder& operator=(const OggOpusDecoder&) = delete;

  absl::Status Decode(absl::string_view bytes, std::vector<float>* out, int64_t* clipped) override;
  absl::Status Finish(std::vector<float>* out) override;
  void LimitSamplesPerDecode(int64_t max_samples) override {
    max_samples_per_decode_ = max_samples;
  }

 private:
  enum class State { kNoStream, kHead, kTags, kAudio, kEnded };

  absl::Status HandlePage(ogg_page* page, std::vector<float>* out);
  absl::Status HandlePacket(const ogg_packet& packet, std::vector<float>* out);
  absl::Status StartLink(absl::string_view head_packet);
  absl::Status DecodeAudio(const ogg_packet& packet, std::vector<float>* out);
  void CloseLink();

  const AudioFormatSpec declared_;
  const int output_rate_hz_;
  int64_t max_samples_per_decode_ = 0;  // 0: no bound
  size_t decode_start_ = 0;             // out->size() when the current Decode() call began
  ogg_sync_state sync_;
  ogg_stream_state stream_;
  bool stream_initialized_ = false;
  State state_ = State::kNoStream;
  int64_t pages_ = 0;              // pages of our logical stream, for messages
  int64_t ignored_streams_ = 0;    // first pages of other codecs' logical streams skipped
  int64_t packets_ = 0;            // audio packets of all links, for messages
  bool packet_continues_ = false;  // our stream holds part of a packet whose end has not come
  std::unique_ptr<OpusLinkDecoder> link_;  // the current link's decoder (null between links)
  int64_t link_start_granule_ = -1;  // granule position of the link's first sample (-1: unknown)
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_OGG_OPUS_DECODER_H_
