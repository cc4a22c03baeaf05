// PcmDecoder: raw little-endian PCM (signed 16-bit or 32-bit float) with interleaved channels
// averaged to mono, at the declared rate (AudioDecoder::Create adds the resampler). Bytes of a
// sample frame split across chunks are carried over. Owned by one stream's AudioDecoder; called
// by that stream's reader thread only.
#ifndef SPEECHLLM_STREAMING_PCM_DECODER_H_
#define SPEECHLLM_STREAMING_PCM_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "streaming/audio_decoder.h"

namespace speechllm::streaming {

class PcmDecoder : public AudioDecoder {
 public:
  // `format.encoding` is kPcmS16le or kPcmF32le; channels >= 1 (checked by Create()).
  explicit PcmDecoder(const AudioFormatSpec& format);

  absl::Status Decode(absl::string_view bytes, std::vector<float>* out, int64_t* clipped) override;
  absl::Status Finish(std::vector<float>* out) override;
  void LimitSamplesPerDecode(int64_t max_samples) override { max_frames_per_decode_ = max_samples; }

 private:
  // Decodes `frames` whole frames starting at `p`.
  absl::Status DecodeFrames(const char* p, size_t frames, std::vector<float>* out,
                            int64_t* clipped);

  AudioFormatSpec format_;
  size_t bytes_per_frame_;  // one sample of every channel
  std::string carry_;       // bytes of an incomplete frame
  int64_t frames_decoded_ = 0;
  int64_t max_frames_per_decode_ = 0;  // 0: no bound
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_PCM_DECODER_H_
