// Expansion of the <|AUDIO|> placeholder in prompt token ids (MODEL.md 5.4): a single placeholder
// becomes N audio tokens, wrapped in <|audio_bos|> ... <|audio_eos|> when it had neither, as HF's
// processor does; an already expanded run of exactly N is kept. Torch-free, pure functions.
#ifndef SPEECHLLM_ENGINE_MODEL_AUDIO_PLACEHOLDER_H_
#define SPEECHLLM_ENGINE_MODEL_AUDIO_PLACEHOLDER_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace speechllm::engine {

// Returns `prompt_ids` with its one run of `audio_token_id` holding exactly `num_audio_tokens` ids;
// a single placeholder with neither `audio_bos_token_id` before it nor `audio_eos_token_id` after
// it gets both. INVALID_ARGUMENT when the prompt has no audio token, several separate runs, or a
// run of another length than 1 or num_audio_tokens.
absl::StatusOr<std::vector<int64_t>> ExpandAudioPlaceholder(const std::vector<int64_t>& prompt_ids,
                                                            int64_t audio_token_id,
                                                            int64_t audio_bos_token_id,
                                                            int64_t audio_eos_token_id,
                                                            int64_t num_audio_tokens);

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_AUDIO_PLACEHOLDER_H_
