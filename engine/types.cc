#include "engine/types.h"

#include "absl/strings/str_cat.h"

namespace speechllm::engine {

std::string SequenceConfig::ToString() const {
  return absl::StrCat(
      "SequenceConfig(final_mode=", final_mode == FinalMode::kExact ? "exact" : "fast",
      ", partial_updates=", partial_updates, ", partials_unsent=", partials_unsent,
      ", max_new_tokens_per_update=", max_new_tokens_per_update,
      ", max_new_tokens_per_segment=", max_new_tokens_per_segment,
      ", reserved_audio_tokens=", reserved_audio_tokens,
      ", reserved_suffix_tokens=", reserved_suffix_tokens, ", ", repetition_guard.ToString(), ")");
}

}  // namespace speechllm::engine
