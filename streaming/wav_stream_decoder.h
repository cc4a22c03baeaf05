// WavStreamDecoder: a WAV file streamed as it is written (`arecord` to a pipe, a browser's WAV
// encoder), split anywhere; the samples go to the PCM or G.711 decoder the fmt chunk names.
// Owned by one call (a stream's reader thread, or Recognize decoding a whole file).
#ifndef SPEECHLLM_STREAMING_WAV_STREAM_DECODER_H_
#define SPEECHLLM_STREAMING_WAV_STREAM_DECODER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "streaming/audio_decoder.h"

namespace speechllm::streaming {

// The RIFF header is read as it comes (chunks before the data skipped unheld); 8/24/32-bit integers
// and 64-bit floats are converted to 32-bit floats first. A data size of 0 or 0xFFFFFFFF, as
// streaming writers leave it, means "to the end".
class WavStreamDecoder : public AudioDecoder {
 public:
  // `declared` non-zero rate and channels must match the fmt chunk's.
  WavStreamDecoder(const AudioFormatSpec& declared, int output_rate_hz);

  absl::Status Decode(absl::string_view bytes, std::vector<float>* out, int64_t* clipped) override;
  absl::Status Finish(std::vector<float>* out) override;
  absl::Status Drain(std::vector<float>* out) override;
  void LimitSamplesPerDecode(int64_t max_samples) override;
  int64_t HeldSamples() const override { return samples_ == nullptr ? 0 : samples_->HeldSamples(); }

 private:
  // Reads chunk headers from `header_` until the data chunk begins; then creates `samples_`.
  absl::Status ParseHeader();
  // The data chunk (of `size` bytes, or to the end when unset) begins: the samples' decoder.
  absl::Status StartData(uint32_t size);
  absl::Status ReadFormat(absl::string_view fmt);
  // Hands `bytes` of the data chunk to `samples_`, converted where the format needs it.
  absl::Status DecodeData(absl::string_view bytes, std::vector<float>* out, int64_t* clipped);

  const AudioFormatSpec declared_;
  const int output_rate_hz_;
  int64_t max_samples_per_decode_ = 0;

  std::string header_;          // bytes of the header not parsed yet
  bool riff_checked_ = false;   // "RIFF....WAVE" seen
  int64_t skip_remaining_ = 0;  // bytes of a chunk before the data still to skip
  int64_t skipped_before_data_ = 0;
  bool have_format_ = false;
  int format_tag_ = 0;  // 1 PCM, 3 float, 6 A-law, 7 mu-law (extensible resolved)
  int channels_ = 0;
  int sample_rate_hz_ = 0;
  int bits_per_sample_ = 0;
  int64_t data_remaining_ = -1;  // bytes of the data chunk still to come; -1: to the end
  bool in_data_ = false;
  bool convert_to_float_ = false;          // 8/24/32-bit integers and 64-bit floats (StartData)
  std::unique_ptr<AudioDecoder> samples_;  // PCM or G.711 at the file's rate, resampled
  std::string carry_;      // bytes of a sample split across calls (converted formats)
  std::string converted_;  // scratch: converted samples as 32-bit floats
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_WAV_STREAM_DECODER_H_
