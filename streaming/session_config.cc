#include "streaming/session_config.h"

#include "absl/strings/str_cat.h"
#include "streaming/chunker.h"

namespace speechllm::streaming {

absl::Status SessionConfig::Validate() const {
  if (absl::Status s = Chunker::ValidateChunkMs(chunk_ms); !s.ok()) return s;
  if (absl::Status s = endpoint.Validate(); !s.ok()) return s;
  if (absl::Status s = voice_activity.Validate(); !s.ok()) return s;
  if (prompt.suffix_ids.empty())
    return absl::InvalidArgumentError("prompt suffix must not be empty");
  if (max_new_tokens_per_segment < 1 || max_new_tokens_per_segment > 4096) {
    return absl::InvalidArgumentError("max_new_tokens_per_segment must be in [1, 4096]");
  }
  if (max_new_tokens_per_update < 1 || max_new_tokens_per_update > max_new_tokens_per_segment) {
    return absl::InvalidArgumentError(
        "max_new_tokens_per_update must be in [1, max_new_tokens_per_segment]");
  }
  if (absl::Status s = repetition_guard.Validate(); !s.ok()) return s;
  if (commit_rules.holdback_tokens < 0 ||
      commit_rules.holdback_tokens > CommitRules::kMaxHoldbackTokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("holdback_tokens must be in [0, ", CommitRules::kMaxHoldbackTokens, "]"));
  }
  if (commit_policy == CommitPolicyKind::kLocalAgreement && !commit_rules.agreement &&
      commit_rules.holdback_tokens == 0) {
    return absl::InvalidArgumentError(
        "committing during an utterance needs agreement or holdback_tokens > 0 (with neither, "
        "every hypothesis would be committed as it comes)");
  }
  if (carry_context_chars < 0 || carry_context_chars > 2000)
    return absl::InvalidArgumentError("carry_context_chars must be in [0, 2000]");
  if (carry_context_chars > 0 && !prompt.suffix_with_previous_text) {
    return absl::InvalidArgumentError(
        "carry_context_chars needs a prompt that can take earlier text (a tokenizer template)");
  }
  if (silence_guard_min_speech_ms < 0 || silence_guard_min_speech_ms > 10000) {
    return absl::InvalidArgumentError("silence_guard_min_speech_ms must be in [0, 10000]");
  }
  if (partial_interval_ms < 0 || partial_interval_ms > 60000) {
    return absl::InvalidArgumentError("partial_interval_ms must be in [0, 60000]");
  }
  if (max_buffered_audio_ms < chunk_ms) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk_ms (", chunk_ms, ") is above the server's max_buffered_audio_ms (",
                     max_buffered_audio_ms, ")"));
  }
  if (stream_offset_seconds < 0) return absl::InvalidArgumentError("stream_offset must be >= 0");
  return absl::OkStatus();
}

std::string SessionConfig::ToString() const {
  return absl::StrCat(
      "SessionConfig(chunk_ms=", chunk_ms, ", interim_results=", interim_results,
      ", commit_policy=", commit_policy == CommitPolicyKind::kNone ? "none" : "local_agreement",
      ", agreement=", commit_rules.agreement, ", holdback_tokens=", commit_rules.holdback_tokens,
      ", final_mode=", final_mode == engine::FinalMode::kExact ? "exact" : "fast",
      ", token_ids=", token_ids, ", ", endpoint.ToString(), ", prompt=", prompt.prefix_ids.size(),
      "+audio+", prompt.suffix_ids.size(),
      " ids, max_new_tokens_per_segment=", max_new_tokens_per_segment, ", ",
      repetition_guard.ToString(), ", silence_guard_min_speech_ms=", silence_guard_min_speech_ms,
      ", carry_context_chars=", carry_context_chars,
      ", max_buffered_audio_ms=", max_buffered_audio_ms, ")");
}

}  // namespace speechllm::streaming
