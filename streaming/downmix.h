// AppendDownmix: interleaved multi-channel float samples to mono by averaging the channels of each
// frame (the one downmix rule of every AudioDecoder). Stateless; any thread.
#ifndef SPEECHLLM_STREAMING_DOWNMIX_H_
#define SPEECHLLM_STREAMING_DOWNMIX_H_

#include <cstddef>
#include <vector>

namespace speechllm::streaming {

// Appends `frames` mono samples: sum of the frame's channels in channel order, divided by
// `channels` (so two identical channels give that channel's samples bit for bit).
inline void AppendDownmix(const float* interleaved, size_t frames, int channels,
                          std::vector<float>* out) {
  const size_t start = out->size();
  out->resize(start + frames);
  float* dst = out->data() + start;
  if (channels == 1) {
    for (size_t f = 0; f < frames; ++f) dst[f] = interleaved[f];
    return;
  }
  for (size_t f = 0; f < frames; ++f) {
    float sum = 0;
    for (int c = 0; c < channels; ++c) sum += interleaved[f * channels + c];
    dst[f] = sum / channels;
  }
}

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_DOWNMIX_H_
