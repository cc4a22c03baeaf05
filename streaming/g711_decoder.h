// G711Decoder: ITU-T G.711 mu-law or A-law bytes (one byte per sample, interleaved channels
// averaged to mono) at the declared rate; AudioDecoder::Create adds the resampler. Owned by one
// stream's AudioDecoder; called by that stream's reader thread only.
#ifndef SPEECHLLM_STREAMING_G711_DECODER_H_
#define SPEECHLLM_STREAMING_G711_DECODER_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "streaming/audio_decoder.h"

namespace speechllm::streaming {

// The 16-bit linear value of one G.711 code word (G.711 tables 1a/2a, expanded as the usual
// 16-bit decoders do: mu-law magnitudes times 4, A-law magnitudes times 8).
int16_t MulawToLinear(uint8_t code);
int16_t AlawToLinear(uint8_t code);

class G711Decoder : public AudioDecoder {
 public:
  // `format.encoding` is kMulaw or kAlaw; channels >= 1 (checked by Create()).
  explicit G711Decoder(const AudioFormatSpec& format);

  absl::Status Decode(absl::string_view bytes, std::vector<float>* out, int64_t* clipped) override;
  absl::Status Finish(std::vector<float>* out) override;
  void LimitSamplesPerDecode(int64_t max_samples) override { max_frames_per_decode_ = max_samples; }

 private:
  const int channels_;
  std::array<float, 256> table_;       // code word -> sample in [-1, 1)
  std::string carry_;                  // codes of an incomplete multi-channel frame
  int64_t max_frames_per_decode_ = 0;  // 0: no bound
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_G711_DECODER_H_
