#include "engine/engine_config.h"

#include "absl/strings/str_cat.h"

namespace speechllm::engine {

absl::Status EngineConfig::Validate() const {
  if (max_num_sequences < 1) return absl::InvalidArgumentError("max_num_sequences must be >= 1");
  if (max_step_tokens < 1) return absl::InvalidArgumentError("max_step_tokens must be >= 1");
  if (max_step_encoder_positions < 1)
    return absl::InvalidArgumentError("max_step_encoder_positions must be >= 1");
  if (max_prefix_tokens < 0 || max_suffix_tokens < 1) {
    return absl::InvalidArgumentError("max_prefix_tokens must be >= 0 and max_suffix_tokens >= 1");
  }
  if (max_audio_tokens_per_segment < 1)
    return absl::InvalidArgumentError("max_audio_tokens_per_segment must be >= 1");
  if (encoder_kv_cache_bytes < 0)
    return absl::InvalidArgumentError("encoder_kv_cache_bytes must be >= 0 (0: automatic)");
  return absl::OkStatus();
}

std::string EngineConfig::ToString() const {
  return absl::StrCat(
      "EngineConfig(max_num_sequences=", max_num_sequences, ", max_step_tokens=", max_step_tokens,
      ", max_step_encoder_positions=", max_step_encoder_positions,
      ", max_prefix_tokens=", max_prefix_tokens, ", max_suffix_tokens=", max_suffix_tokens,
      ", max_audio_tokens_per_segment=", max_audio_tokens_per_segment,
      ", encoder_kv_cache_bytes=", encoder_kv_cache_bytes, ")");
}

}  // namespace speechllm::engine
