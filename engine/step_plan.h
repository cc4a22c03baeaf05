// StepPlan / StepResult: what one engine step computes and what comes back. The Scheduler builds a
// plan from the sequences' pending work; the ModelRunner executes it (encoder items first, then one
// decoder pass over every prefill piece and decode token) and returns greedy choices. Plain data,
// torch-free; built and consumed on the engine loop thread.
#ifndef SPEECHLLM_ENGINE_STEP_PLAN_H_
#define SPEECHLLM_ENGINE_STEP_PLAN_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "engine/types.h"

namespace speechllm::engine {

// Encode log-mel frames of one sequence and append (block) or replace (full) its audio embeddings.
struct EncodeItem {
  enum class Kind { kBlock, kFull };
  SequenceId id = kInvalidSequenceId;
  Kind kind = Kind::kBlock;
  const EncoderChunk* chunk =
      nullptr;  // kBlock: attends to itself and the sequence's cached encoder K/V
  const SegmentEnd* segment =
      nullptr;  // kFull: the whole segment with full attention; resets the cache
};

// New tokens of one sequence written into its KV blocks at [start_position, start_position + size).
// The first num_audio_rows tokens (audio placeholder ids) take the sequence's audio embeddings in
// order, starting at row first_audio_row; every later token is text whatever its id, so that a
// generated or committed placeholder id is embedded as text, as in HF's generate. Greedy choices
// are returned for token_ids[first_logit_index ..] (none if the index is past the end).
struct PrefillItem {
  SequenceId id = kInvalidSequenceId;
  int64_t start_position = 0;
  std::vector<int64_t> token_ids;
  int64_t num_audio_rows = 0;
  int64_t first_audio_row = 0;
  std::vector<int64_t> block_table;
  int64_t first_logit_index = 0;
};

struct StepPlan {
  std::vector<std::pair<int64_t, int64_t>>
      block_copies;  // (source, destination), before the decoder pass
  std::vector<EncodeItem> encodes;
  std::vector<PrefillItem> prefills;  // a decode token is a prefill of one token with its logit
  int64_t live_sequences = 0;  // the engine's sequences, in this step or not (CPU thread policy)
  bool empty() const { return encodes.empty() && prefills.empty(); }
  int64_t num_tokens() const;
  // The sequences with an item in the step, each once, in order of first appearance (encoder
  // items, then prefill items).
  std::vector<SequenceId> sequence_ids() const;
};

struct TokenChoice {
  int64_t token_id = 0;
  float margin = 0;           // top-1 minus top-2 logit (float32)
  float log_probability = 0;  // of token_id (log-softmax, float32)
  // Of the item's token after this row (the draft token the row verifies); of token_id when the
  // row is the item's last.
  float next_token_log_probability = 0;
};

struct StepResult {
  absl::Duration encoder_time, decoder_time;  // where the step's time went
  // The part of decoder_time spent in the read of the step's choices, the step's one wait: on a
  // GPU mostly the wait for the device to finish work the host queued before it (a slow step with
  // a short wait was held up on the host), on the CPU the sampling itself.
  absl::Duration wait_time;
  std::vector<int64_t> audio_tokens;  // per encode item: embeddings now held for the segment
  // Per encode item (or empty): the projected rows of a full encode whose end asked for them
  // (SegmentEnd::return_embeddings), float32 [rows][hidden_size]; empty for the others.
  std::vector<std::vector<float>> returned_embeddings;
  std::vector<std::vector<TokenChoice>> choices;  // per prefill item
  bool decode_graph = false;                      // the decoder pass replayed a captured CUDA graph
  // Sequences whose own part of the step failed when the step ran again in parts, without the
  // others (ExecuteIsolatingFailures); their choices and audio_tokens entries are empty or zero. A
  // runner's Execute never sets it: it fails the whole step or none of it.
  struct SequenceFailure {
    SequenceId id = kInvalidSequenceId;
    absl::Status status;
  };
  std::vector<SequenceFailure> failed_sequences;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_STEP_PLAN_H_
