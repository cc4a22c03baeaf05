// OpusPacketDecoder: raw Opus packets (RFC 6716) as WebRTC-style clients send them, exactly one
// packet per Decode() call (ChunksArePackets() is true), decoded by libopus at the output rate and
// averaged to mono. No container: no pre-skip, no gain, no end trimming. Owned by one stream's
// AudioDecoder; called by that stream's reader thread only.
#ifndef SPEECHLLM_STREAMING_OPUS_PACKET_DECODER_H_
#define SPEECHLLM_STREAMING_OPUS_PACKET_DECODER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "streaming/audio_decoder.h"

struct OpusDecoder;

namespace speechllm::streaming {

class OpusPacketDecoder : public AudioDecoder {
 public:
  // `channels` 1 or 2 (a mono decoder also decodes stereo packets); `output_rate_hz` one of
  // libopus's rates (8000, 12000, 16000, 24000, 48000). INVALID_ARGUMENT otherwise.
  static absl::StatusOr<std::unique_ptr<OpusPacketDecoder>> Create(int channels,
                                                                   int output_rate_hz);
  ~OpusPacketDecoder() override;
  OpusPacketDecoder(const OpusPacketDecoder&) = delete;
  OpusPacketDecoder& operator=(const OpusPacketDecoder&) = delete;

  // `bytes` is one whole packet; INVALID_ARGUMENT for an empty or corrupt one.
  absl::Status Decode(absl::string_view bytes, std::vector<float>* out, int64_t* clipped) override;
  absl::Status Finish(std::vector<float>* out) override { return absl::OkStatus(); }
  bool ChunksArePackets() const override { return true; }
  // One call is one packet: at most 120 ms whatever the bound.
  void LimitSamplesPerDecode(int64_t max_samples) override {}

 private:
  OpusPacketDecoder(OpusDecoder* decoder, int channels, int output_rate_hz);

  OpusDecoder* decoder_;
  const int channels_;
  const int max_frames_;  // 120 ms, the longest packet
  int64_t packets_ = 0;
  std::vector<float> pcm_;
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_OPUS_PACKET_DECODER_H_
