// SessionConfig: everything one stream's Session needs, resolved from the client's config and the
// server's defaults: chunking, result options, endpointing, prompt ids and limits. Plain data with
// Validate()/ToString(); built on the gRPC thread that reads the stream's first message.
#ifndef SPEECHLLM_STREAMING_SESSION_CONFIG_H_
#define SPEECHLLM_STREAMING_SESSION_CONFIG_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/types.h"
#include "streaming/endpoint_config.h"
#include "streaming/voice_activity.h"

namespace speechllm::streaming {

enum class CommitPolicyKind { kLocalAgreement, kNone };

// API.md 4.2: how partial hypotheses commit text under CommitPolicyKind::kLocalAgreement. The
// server's LatencyMode presets: LOW = holdback 3 without agreement; BALANCED and ACCURATE =
// LocalAgreement-2 + holdback 5. The struct's defaults are LocalAgreement-2 alone.
struct CommitRules {
  static constexpr int kMaxHoldbackTokens = 64;
  // Commit only what two consecutive hypotheses agree on (LocalAgreement-2).
  bool agreement = true;
  // Never commit the last this many tokens of a hypothesis (Qwen3-ASR's rollback), and, when
  // above 0, nothing in an utterance's first kColdStartUpdates partial updates.
  int holdback_tokens = 0;
  static constexpr int kColdStartUpdates = 2;
};

// Token ids around a segment's audio tokens (ARCHITECTURE 5): prefix (ends with <|audio_bos|>),
// then the audio, then the suffix (starts with <|audio_eos|>, ends with the assistant turn's
// start).
struct PromptConfig {
  std::vector<int64_t> prefix_ids;
  std::vector<int64_t> suffix_ids;
  // Set when earlier text may be carried into the prompt (SessionConfig::carry_context_chars): the
  // suffix of the same prompt with `previous_text` (the end of the stream's earlier utterances) as
  // context. Errors leave the utterance with `suffix_ids`. Called on the session's threads.
  std::function<absl::StatusOr<std::vector<int64_t>>(const std::string& previous_text)>
      suffix_with_previous_text;
};

struct SessionConfig {
  int chunk_ms = 1000;  // encoder chunk: a multiple of 40 ms
  bool interim_results = true;
  CommitPolicyKind commit_policy = CommitPolicyKind::kLocalAgreement;
  CommitRules commit_rules;
  engine::FinalMode final_mode = engine::FinalMode::kExact;
  bool token_ids = false;         // finals carry the model's token ids
  int partial_interval_ms = 200;  // at most one partial per utterance this often (finals unlimited)
  EndpointConfig endpoint;
  VoiceActivityConfig voice_activity;
  bool voice_activity_events = false;  // SPEECH_STARTED / SPEECH_ENDED events
  PromptConfig prompt;
  int max_new_tokens_per_segment = 256;
  int max_new_tokens_per_update = 32;
  // Cuts decoder loops and stops decoding (REPETITION_SUPPRESSED warning with the final). Off here;
  // the server's --repetition_guard_tokens sets it.
  engine::RepetitionGuardConfig repetition_guard;
  // Silence guard (API.md 4.5): an utterance with less speech than this (VAD frames above its
  // thresholds, hangover not counted) shows no text: partials are held back, the final is empty and
  // follows a SILENCE_SUPPRESSED warning. 0: off.
  int silence_guard_min_speech_ms = 0;
  // The last this many characters of the stream's committed text go into the next utterance's
  // prompt (API.md 4.5), through prompt.suffix_with_previous_text; an utterance then starts once
  // the previous final is known. 0: off (every utterance is transcribed as if alone).
  int carry_context_chars = 0;
  int max_buffered_audio_ms = 10000;  // reading pauses when the backlog exceeds it
  double stream_offset_seconds = 0;   // added to every offset reported

  // INVALID_ARGUMENT naming the field and its allowed range.
  absl::Status Validate() const;
  std::string ToString() const;
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_SESSION_CONFIG_H_
