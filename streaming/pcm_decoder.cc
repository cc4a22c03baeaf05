#include "streaming/pcm_decoder.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace speechllm::streaming {

PcmDecoder::PcmDecoder(const AudioFormatSpec& format)
    : format_(format),
      bytes_per_frame_((format.encoding == AudioEncoding::kPcmS16le ? 2 : 4) *
                       static_cast<size_t>(format.channels)) {}

absl::Status PcmDecoder::Decode(absl::string_view bytes, std::vector<float>* out,
                                int64_t* clipped) {
  std::string joined;
  if (!carry_.empty()) {
    joined = carry_;
    joined.append(bytes.data(), bytes.size());
    bytes = joined;
  }
  const size_t frames = bytes.size() / bytes_per_frame_;
  const int channels = format_.channels;
  out->reserve(out->size() + frames);
  const char* p = bytes.data();
  for (size_t f = 0; f < frames; ++f) {
    float sum = 0;
    for (int c = 0; c < channels; ++c) {
      float v;
      if (format_.encoding == AudioEncoding::kPcmS16le) {
        int16_t s;
        std::memcpy(&s, p, 2);
        p += 2;
        v = s / 32768.0f;
      } else {
        std::memcpy(&v, p, 4);
        p += 4;
        if (!std::isfinite(v)) {
          return absl::InvalidArgumentError(
              absl::StrCat("audio holds a non-finite float sample (", v, ")"));
        }
        if (v > 1.0f || v < -1.0f) {
          v = v > 1.0f ? 1.0f : -1.0f;
          if (clipped != nullptr) ++*clipped;
        }
      }
      sum += v;
    }
    out->push_back(channels == 1 ? sum : sum / channels);
  }
  carry_.assign(bytes.data() + frames * bytes_per_frame_, bytes.size() - frames * bytes_per_frame_);
  return absl::OkStatus();
}

absl::Status PcmDecoder::Finish(std::vector<float>* out) {
  if (!carry_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("audio ends with ", carry_.size(),
                                                   " bytes of an incomplete ", bytes_per_frame_,
                                                   "-byte sample frame"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<AudioDecoder>> AudioDecoder::Create(const AudioFormatSpec& format,
                                                                   int output_rate_hz) {
  if (format.channels < 1 || format.channels > 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("audio.channels must be 1 to 8, got ", format.channels));
  }
  if (format.sample_rate_hz != output_rate_hz) {
    return absl::InvalidArgumentError(absl::StrCat("audio.sample_rate_hz ", format.sample_rate_hz,
                                                   " is not supported: send ", output_rate_hz,
                                                   " Hz PCM"));
  }
  return std::make_unique<PcmDecoder>(format);
}

}  // namespace speechllm::streaming
