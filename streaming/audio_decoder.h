// AudioDecoder: bytes of one stream's audio encoding in, 16 kHz mono float samples out,
// incrementally: any split of the byte stream across calls gives the same samples. Finish() reports
// a partial sample (or an unfinished container) left at the end of input. One decoder per stream,
// used by the gRPC thread that reads that stream; not thread-safe. Create() picks the
// implementation for an encoding.
#ifndef SPEECHLLM_STREAMING_AUDIO_DECODER_H_
#define SPEECHLLM_STREAMING_AUDIO_DECODER_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace speechllm::streaming {

enum class AudioEncoding { kPcmS16le, kPcmF32le };

struct AudioFormatSpec {
  AudioEncoding encoding = AudioEncoding::kPcmS16le;
  int sample_rate_hz = 16000;
  int channels = 1;
};

class AudioDecoder {
 public:
  virtual ~AudioDecoder() = default;

  // A decoder for `format`, producing samples at `output_rate_hz`. INVALID_ARGUMENT naming the
  // field for an unsupported encoding, rate or channel count.
  static absl::StatusOr<std::unique_ptr<AudioDecoder>> Create(const AudioFormatSpec& format,
                                                              int output_rate_hz);

  // Decodes the next bytes, appending samples to `out`. INVALID_ARGUMENT for malformed input
  // (non-finite floats, a corrupt packet). `clipped` (optional) counts samples clamped to [-1, 1].
  virtual absl::Status Decode(absl::string_view bytes, std::vector<float>* out,
                              int64_t* clipped) = 0;
  // End of input: INVALID_ARGUMENT when bytes of an incomplete sample or frame are left over.
  virtual absl::Status Finish(std::vector<float>* out) = 0;
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_AUDIO_DECODER_H_
