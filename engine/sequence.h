// Sequence: the engine's record of one stream: its current segment (prompt, phase, KV length, audio
// tokens), queued chunks and segment ends, the hypothesis and the update in progress. Owned by the
// Scheduler and touched only by the engine loop thread.
#ifndef SPEECHLLM_ENGINE_SEQUENCE_H_
#define SPEECHLLM_ENGINE_SEQUENCE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "engine/step_plan.h"
#include "engine/types.h"

namespace speechllm::engine {

// Phases of the current segment, in time order.
enum class SegmentPhase { kWaitingStart, kPrefix, kListening, kFinalizing };

// What the sequence's item in the current step computes.
enum class Activity {
  kIdle,
  kPrefix,   // prefill of the segment prefix, no logits
  kAdvance,  // new audio tokens only (fast mode without partials)
  kVerify,   // new audio + suffix + draft, greedy choices to verify the draft
  kDecode,   // one token
  kPiece,    // a piece of a prefill longer than the step's budget: KV only, no logits
};

struct Sequence {
  SequenceId id = kInvalidSequenceId;
  SequenceConfig config;
  bool failed = false;

  // Queued inbox work, possibly for later segments.
  std::deque<SegmentStart> starts;
  std::deque<std::unique_ptr<EncoderChunk>> chunks;
  std::deque<std::unique_ptr<SegmentEnd>> ends;

  // The current segment.
  int64_t segment_index = -1;
  SegmentPhase phase = SegmentPhase::kWaitingStart;
  std::vector<int64_t> prefix_ids, suffix_ids;
  int64_t prefix_cached_tokens = 0;  // prefix tokens shared from the PrefixRegistry
  int64_t kv_tokens = 0;             // tokens whose keys/values are valid in the KV cache
  int64_t audio_in_kv = 0;           // audio tokens after the prefix that are in the KV cache
  bool update_open = false;          // an update (or the final) has not yet produced its output
  bool final_started = false;
  std::vector<int64_t> forced;  // committed token ids the hypothesis must start with
  // The hypothesis and, per token, its margin and log-probability (TruncateHypothesis keeps the
  // three the same length).
  std::vector<int64_t> hypothesis;
  std::vector<float> margins;
  std::vector<float> log_probabilities;
  bool pending_token = false;  // hypothesis.back() was chosen but is not in the KV cache yet
  int new_tokens_in_update = 0;
  int64_t commit_conflicts = 0;
  int64_t repeated_tokens_cut = 0;  // by the repetition guard in the update in progress
  double audio_end_seconds = 0;
  absl::Time input_time;
  absl::Duration compute_time;
  // input_time -> the start of the planning of the step that began this update.
  absl::Duration queue_wait;

  // The item of the current step (set by Schedule, consumed by Update).
  Activity activity = Activity::kIdle;
  std::vector<int64_t> draft;         // kVerify: the draft tokens appended after the suffix
  int64_t verify_first_position = 0;  // kVerify: KV position of the first new audio token
  int64_t verify_new_audio = 0;       // kVerify / kAdvance: audio tokens in the item
  std::vector<std::unique_ptr<EncoderChunk>>
      chunks_in_step;  // kept alive while the runner reads them
  std::unique_ptr<SegmentEnd> end_in_step;
  // The final's projected rows the runner returned (SegmentEnd::return_embeddings), until the final
  // goes out.
  std::vector<float> returned_embeddings;
  int64_t returned_rows = 0;
  std::string cache_key;
  // Chunked prefill: an item longer than a step's token budget runs in pieces over the following
  // steps, before any other work of the sequence. `prefill_rest` is what is still to run (its
  // block table is taken again when planned); `activity_when_done` is what the whole item does
  // (kPrefix, kAdvance or kVerify), applied when its last piece has run.
  std::optional<PrefillItem> prefill_rest;
  Activity activity_when_done = Activity::kIdle;
  absl::Time prefill_rest_since;  // how overdue the whole item was ranked (its oldest input)

  int64_t frontier() const { return static_cast<int64_t>(prefix_ids.size()) + audio_in_kv; }
  // Keeps the first `size` tokens of the hypothesis with their margins and log-probabilities.
  void TruncateHypothesis(size_t size) {
    hypothesis.resize(size);
    margins.resize(size);
    log_probabilities.resize(size);
  }
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_SEQUENCE_H_
