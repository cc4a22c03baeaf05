// PcmDecoder: raw little-endian PCM (signed 16-bit or 32-bit float), interleaved channels averaged
// to mono, at the model's rate (resampling arrives with the other encodings). Bytes of a sample
// split across chunks are carried over. One per stream; the stream's reader thread only.
#ifndef SPEECHLLM_STREAMING_PCM_DECODER_H_
#define SPEECHLLM_STREAMING_PCM_DECODER_H_

#include <string>
#include <vector>

#include "streaming/audio_decoder.h"

namespace speechllm::streaming {

class PcmDecoder : public AudioDecoder {
 public:
  explicit PcmDecoder(const AudioFormatSpec& format);

  absl::Status Decode(absl::string_view bytes, std::vector<float>* out, int64_t* clipped) override;
  absl::Status Finish(std::vector<float>* out) override;

 private:
  AudioFormatSpec format_;
  size_t bytes_per_frame_;  // one sample of every channel
  std::string carry_;       // bytes of an incomplete frame
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_PCM_DECODER_H_
