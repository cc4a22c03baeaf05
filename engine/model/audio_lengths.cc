#include "engine/model/audio_lengths.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace speechllm::engine {

int64_t NumValidFrames(int64_t num_samples, const FeatureConfig& features) {
  const int64_t kept = std::clamp<int64_t>(num_samples, 0, features.max_samples);
  return (kept + features.hop_length - 1) / features.hop_length;
}

absl::StatusOr<int64_t> AudioTokensForSamples(int64_t num_samples, const FeatureConfig& features) {
  const int64_t tokens = AudioTokenCount(NumValidFrames(num_samples, features));
  if (tokens <= 0) {
    // Three valid frames are the least that give one token.
    const int64_t minimum = 2 * static_cast<int64_t>(features.hop_length) + 1;
    return absl::InvalidArgumentError(absl::StrCat(
        "audio of ", num_samples, " samples (", 1000.0 * num_samples / features.sample_rate_hz,
        " ms) is too short for one audio token; at least ", minimum, " samples are needed"));
  }
  return tokens;
}

}  // namespace speechllm::engine
