#include "engine/model/audio_placeholder.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace speechllm::engine {

absl::StatusOr<std::vector<int64_t>> ExpandAudioPlaceholder(const std::vector<int64_t>& prompt_ids,
                                                            int64_t audio_token_id,
                                                            int64_t audio_bos_token_id,
                                                            int64_t audio_eos_token_id,
                                                            int64_t num_audio_tokens) {
  int64_t run_begin = -1, run_length = 0, runs = 0;
  for (size_t i = 0; i < prompt_ids.size(); ++i) {
    if (prompt_ids[i] != audio_token_id) continue;
    if (i == 0 || prompt_ids[i - 1] != audio_token_id) {
      ++runs;
      run_begin = static_cast<int64_t>(i);
      run_length = 0;
    }
    ++run_length;
  }
  if (runs == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("the prompt has no audio token (id ", audio_token_id, ")"));
  }
  if (runs > 1) {
    return absl::InvalidArgumentError(absl::StrCat("the prompt has ", runs,
                                                   " separate audio placeholders; one clip "
                                                   "needs exactly one"));
  }
  if (run_length == num_audio_tokens) return prompt_ids;
  if (run_length != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("the prompt has ", run_length, " audio tokens but the clip yields ",
                     num_audio_tokens, "; give one placeholder or exactly that many"));
  }
  // HF's processor wraps a placeholder that has neither neighbour (MODEL.md 5.4); one of them alone
  // is left as it is, as there.
  const bool has_bos = run_begin > 0 && prompt_ids[run_begin - 1] == audio_bos_token_id;
  const bool has_eos = run_begin + 1 < static_cast<int64_t>(prompt_ids.size()) &&
                       prompt_ids[run_begin + 1] == audio_eos_token_id;
  const bool wrap = !has_bos && !has_eos;
  std::vector<int64_t> expanded(prompt_ids.begin(), prompt_ids.begin() + run_begin);
  if (wrap) expanded.push_back(audio_bos_token_id);
  expanded.insert(expanded.end(), static_cast<size_t>(num_audio_tokens), audio_token_id);
  if (wrap) expanded.push_back(audio_eos_token_id);
  expanded.insert(expanded.end(), prompt_ids.begin() + run_begin + 1, prompt_ids.end());
  return expanded;
}

}  // namespace speechllm::engine
