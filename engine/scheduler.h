// Scheduler: the engine's policy. It owns the sequences, turns their queued work into a StepPlan
// (one item per sequence per step: a prefix prefill, an update that encodes new chunks and verifies
// the previous hypothesis as a draft, one decode token, a segment's final, or the next piece of one
// of these split to fit) within the step's token budget and the free KV blocks, and applies the
// runner's results (draft acceptance, KV truncation, outputs). Engine loop thread only; no locks.
#ifndef SPEECHLLM_ENGINE_SCHEDULER_H_
#define SPEECHLLM_ENGINE_SCHEDULER_H_

#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/engine_config.h"
#include "engine/kv_cache_manager.h"
#include "engine/model/model_config.h"
#include "engine/prefix_registry.h"
#include "engine/sequence.h"
#include "engine/step_plan.h"

namespace speechllm::engine {

class Scheduler {
 public:
  Scheduler(const EngineConfig& config, const ModelConfig& model, int64_t num_kv_blocks,
            int64_t block_size);

  // Inbox messages, applied on the loop thread.
  void AddSequence(SequenceId id, const SequenceConfig& config);
  void RemoveSequence(SequenceId id);
  void StartSegment(SequenceId id, SegmentStart start);
  void AddChunk(SequenceId id, std::unique_ptr<EncoderChunk> chunk);
  void EndSegment(SequenceId id, std::unique_ptr<SegmentEnd> end);

  // The next step. Outputs of updates that new work interrupted are queued for TakeOutputs.
  StepPlan Schedule();
  // Applies the results of `plan` (or fails its sequences when `result` is an error) and returns
  // the finished partials and finals. `step_time` is charged to every sequence in the step. Taken
  // by value: rows returned for the embedding cache move on into the sequences.
  std::vector<SequenceOutput> Update(const StepPlan& plan, absl::StatusOr<StepResult> result,
                                     absl::Duration step_time);
  // Sequences whose runner-side segment state (encoder cache, audio embeddings) must be dropped.
  std::vector<SequenceId> TakeRunnerResets();

  bool HasWork() const;
  const PrefixRegistry& prefixes() const { return prefixes_; }
  int64_t num_sequences() const { return static_cast<int64_t>(sequences_.size()); }
  const KvCacheManager& kv() const { return kv_; }
  int64_t tokens_generated() const { return tokens_generated_; }
  // Tokens of previous hypotheses re-verified as drafts (committed text excluded), and how many
  // of them the model's choices kept.
  int64_t draft_tokens() const { return draft_tokens_; }
  int64_t draft_accepted_tokens() const { return draft_accepted_tokens_; }

 private:
  Sequence* Find(SequenceId id);
  // Starts the next segment when its StartSegment has arrived and the previous one is closed.
  void MaybeBeginSegment(Sequence* sequence);
  // Plans the sequence's item for this step; false when it has nothing to do (or cannot get KV).
  bool PlanSequence(Sequence* sequence, StepPlan* plan, int64_t* budget);
  // What the sequence would do next: 0 nothing, 1 a decode token, 2 other work, 3 a chunk update
  // whose partial nobody reads (SequenceConfig::partials_unsent); `since` is when the input that
  // waits for it arrived (the most overdue goes first within a kind).
  int NextWork(Sequence* sequence, absl::Time* since);
  // An update (a chunk's partial or the final) begins in the step being planned: its input time
  // (the newest chunk, the endpoint), no engine time yet, the wait since `waiting_since` (the
  // oldest chunk it takes; a held end's cache answer) as ResultTiming.queue_wait, no conflicts.
  void BeginUpdate(Sequence* sequence, absl::Time input_time, absl::Time waiting_since);
  // Encoder positions PlanSequence would give the sequence's next work (after NextWork): its
  // chunks' blocks, and for a final the tail block or, exact, the whole segment's re-encode.
  int64_t PendingEncoderPositions(const Sequence* sequence) const;
  // Encoder positions one planned encode item computes.
  static int64_t EncodePositions(const EncodeItem& item);
  bool PlanVerify(Sequence* sequence, StepPlan* plan, std::vector<int64_t> new_audio_prefix,
                  bool with_suffix);
  // Chunked prefill: when the sequence's new item is longer than what is left of the step's
  // `budget` (> 0), only a first piece of that size stays in the step and the rest waits in the
  // sequence for the next steps. Tokens that need a choice are never split from each other.
  void KeepWithinBudget(Sequence* sequence, PrefillItem* item, int64_t budget);
  bool AddPrefill(Sequence* sequence, StepPlan* plan, int64_t start_position,
                  std::vector<int64_t> token_ids, int64_t num_audio_rows, int64_t first_audio_row,
                  int64_t first_logit_index);
  void ApplyVerify(Sequence* sequence, const std::vector<TokenChoice>& choices,
                   std::vector<SequenceOutput>* out);
  void ApplyDecode(Sequence* sequence, const TokenChoice& choice, std::vector<SequenceOutput>* out);
  // Emits the open update's output; a final also closes the segment.
  void FinishUpdate(Sequence* sequence, std::vector<SequenceOutput>* out);
  void Fail(Sequence* sequence, const absl::Status& status, std::vector<SequenceOutput>* out);
  bool IsStop(int64_t token_id) const;
  int64_t AudioTokensOf(const EncoderChunk& chunk) const;

  const EngineConfig config_;
  const ModelConfig model_;
  KvCacheManager kv_;
  PrefixRegistry prefixes_;
  absl::flat_hash_map<SequenceId, std::unique_ptr<Sequence>> sequences_;
  std::vector<SequenceId> order_;  // admission order, for round-robin fairness
  size_t next_start_ = 0;
  absl::Time plan_time_;  // when the step being planned began planning (its updates' queue_wait)
  std::vector<SequenceOutput> interrupted_outputs_;
  std::vector<SequenceId> runner_resets_;
  int64_t tokens_generated_ = 0;
  int64_t draft_tokens_ = 0;
  int64_t draft_accepted_tokens_ = 0;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_SCHEDULER_H_
