#include "streaming/pcm_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace speechllm::streaming {

PcmDecoder::PcmDecoder(const AudioFormatSpec& format)
    : format_(format),
      bytes_per_frame_((format.encoding == AudioEncoding::kPcmS16le ? 2 : 4) *
                       static_cast<size_t>(format.channels)) {}

absl::Status PcmDecoder::DecodeFrames(const char* p, size_t frames, std::vector<float>* out,
                                      int64_t* clipped) {
  const int channels = format_.channels;
  const size_t start = out->size();
  out->resize(start + frames);
  float* dst = out->data() + start;
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
          out->resize(start + f);
          return NonFiniteAudioError(
              absl::StrCat("PCM_F32LE audio holds a non-finite sample (", v, ") in sample frame ",
                           frames_decoded_ + static_cast<int64_t>(f), ", channel ", c));
        }
        if (v > 1.0f || v < -1.0f) {
          v = v > 1.0f ? 1.0f : -1.0f;
          if (clipped != nullptr) ++*clipped;
        }
      }
      sum += v;
    }
    dst[f] = channels == 1 ? sum : sum / channels;
  }
  frames_decoded_ += static_cast<int64_t>(frames);
  return absl::OkStatus();
}

absl::Status PcmDecoder::Decode(absl::string_view bytes, std::vector<float>* out,
                                int64_t* clipped) {
  if (absl::Status s = CheckFramesPerDecode(
          format_.encoding == AudioEncoding::kPcmS16le ? "PCM_S16LE" : "PCM_F32LE",
          static_cast<int64_t>((carry_.size() + bytes.size()) / bytes_per_frame_),
          max_frames_per_decode_);
      !s.ok()) {
    return s;
  }
  if (!carry_.empty()) {  // complete the frame split across chunks first
    const size_t take = std::min(bytes_per_frame_ - carry_.size(), bytes.size());
    carry_.append(bytes.data(), take);
    bytes.remove_prefix(take);
    if (carry_.size() < bytes_per_frame_) return absl::OkStatus();
    if (absl::Status s = DecodeFrames(carry_.data(), 1, out, clipped); !s.ok()) return s;
    carry_.clear();
  }
  const size_t frames = bytes.size() / bytes_per_frame_;
  if (absl::Status s = DecodeFrames(bytes.data(), frames, out, clipped); !s.ok()) return s;
  carry_.assign(bytes.data() + frames * bytes_per_frame_, bytes.size() - frames * bytes_per_frame_);
  return absl::OkStatus();
}

absl::Status PcmDecoder::Finish(std::vector<float>* out) {
  if (!carry_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(format_.encoding == AudioEncoding::kPcmS16le ? "PCM_S16LE" : "PCM_F32LE",
                     " audio ends with ", carry_.size(), " bytes of an incomplete ",
                     bytes_per_frame_, "-byte sample frame (", format_.channels,
                     " channel(s)): the byte count is not a multiple ", "of the frame size"));
  }
  return absl::OkStatus();
}

}  // namespace speechllm::streaming
