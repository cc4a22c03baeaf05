#include "streaming/g711_decoder.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace speechllm::streaming {

// G.711 section 2 defines the code words by tables; the closed forms below compute the decision
// values' reconstruction levels from the definition (sign bit, 3-bit segment, 4-bit step).
int16_t MulawToLinear(uint8_t code) {
  const int u = static_cast<uint8_t>(~code);  // mu-law code words are sent inverted
  const int segment = (u >> 4) & 7;
  const int step = u & 0x0f;
  // Segment s spans steps of 2^(s+1) units from (2^(s+5) - 33): ((2 step + 33) << s) - 33 in the
  // 14-bit range, times 4 for 16 bits.
  const int magnitude = (((step << 3) + 0x84) << segment) - 0x84;
  return static_cast<int16_t>((u & 0x80) ? -magnitude : magnitude);
}

int16_t AlawToLinear(uint8_t code) {
  const int a = code ^ 0x55;  // even bits are inverted on the line
  const int segment = (a >> 4) & 7;
  const int step = a & 0x0f;
  // Segment 0 is linear (step * 2 + 1 in 12-bit units); segment s > 0 starts at 2^(s+4) with
  // steps of 2^s; times 8 for 16 bits.
  const int magnitude = segment == 0 ? (step << 4) + 8 : ((step << 4) + 0x108) << (segment - 1);
  return static_cast<int16_t>((a & 0x80) ? magnitude : -magnitude);  // sign bit 1 = positive
}

G711Decoder::G711Decoder(const AudioFormatSpec& format) : channels_(format.channels) {
  for (int code = 0; code < 256; ++code) {
    const int16_t linear = format.encoding == AudioEncoding::kMulaw
                               ? MulawToLinear(static_cast<uint8_t>(code))
                               : AlawToLinear(static_cast<uint8_t>(code));
    table_[code] = linear / 32768.0f;
  }
}

absl::Status G711Decoder::Decode(absl::string_view bytes, std::vector<float>* out,
                                 int64_t* clipped) {
  if (absl::Status s = CheckFramesPerDecode(
          "G.711", static_cast<int64_t>((carry_.size() + bytes.size()) / channels_),
          max_frames_per_decode_);
      !s.ok()) {
    return s;
  }
  if (channels_ == 1) {
    const size_t start = out->size();
    out->resize(start + bytes.size());
    float* dst = out->data() + start;
    for (size_t i = 0; i < bytes.size(); ++i) dst[i] = table_[static_cast<uint8_t>(bytes[i])];
    return absl::OkStatus();
  }
  const size_t channels = static_cast<size_t>(channels_);
  auto frame = [&](const char* p) {
    float sum = 0;
    for (size_t c = 0; c < channels; ++c) sum += table_[static_cast<uint8_t>(p[c])];
    out->push_back(sum / channels_);
  };
  if (!carry_.empty()) {
    const size_t take = std::min(channels - carry_.size(), bytes.size());
    carry_.append(bytes.data(), take);
    bytes.remove_prefix(take);
    if (carry_.size() < channels) return absl::OkStatus();
    frame(carry_.data());
    carry_.clear();
  }
  const size_t frames = bytes.size() / channels;
  out->reserve(out->size() + frames);
  for (size_t f = 0; f < frames; ++f) frame(bytes.data() + f * channels);
  carry_.assign(bytes.data() + frames * channels, bytes.size() - frames * channels);
  return absl::OkStatus();
}

absl::Status G711Decoder::Finish(std::vector<float>* out) {
  if (!carry_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("G.711 audio ends with ", carry_.size(),
                                                   " bytes of an incomplete ", channels_,
                                                   "-channel sample frame"));
  }
  return absl::OkStatus();
}

}  // namespace speechllm::streaming
