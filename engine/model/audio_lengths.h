// Length arithmetic of the Qwen2-Audio front end and encoder (MODEL.md 1.3, 2.3): samples -> valid
// mel frames -> conv2 positions -> audio tokens, with Python floor-division semantics. Pure
// functions, callable from any thread.
#ifndef SPEECHLLM_ENGINE_MODEL_AUDIO_LENGTHS_H_
#define SPEECHLLM_ENGINE_MODEL_AUDIO_LENGTHS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "engine/model/model_config.h"

namespace speechllm::engine {

// Python's a // b (rounds toward negative infinity); b > 0.
constexpr int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

// Valid mel frames of `num_samples` samples: ceil(num_samples / hop), at most max_frames (HF keeps
// the first max_samples samples).
int64_t NumValidFrames(int64_t num_samples, const FeatureConfig& features);

// Positions after conv2 (stride 2): (num_frames - 1) // 2 + 1.
constexpr int64_t ConvOutputLength(int64_t num_frames) { return FloorDiv(num_frames - 1, 2) + 1; }

// Audio tokens after the stride-2 average pool: (ConvOutputLength - 2) // 2 + 1. Zero for 1 or 2
// frames.
constexpr int64_t AudioTokenCount(int64_t num_frames) {
  return FloorDiv(ConvOutputLength(num_frames) - 2, 2) + 1;
}

// Audio tokens of a clip of `num_samples` samples; INVALID_ARGUMENT when the clip is too short to
// yield one token (at most 320 samples at 16 kHz), naming the minimum.
absl::StatusOr<int64_t> AudioTokensForSamples(int64_t num_samples, const FeatureConfig& features);

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_AUDIO_LENGTHS_H_
