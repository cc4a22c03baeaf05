// Engine: the facade of the inference engine. One loop thread owns the ModelRunner (and so the
// model and the device); callers on any thread post work into its inbox (AddSequence is answered
// synchronously for admission) and take finished updates with PopOutputs. Sequences are addressed
// by id only. Thread safety: every public method may be called from any thread.
#ifndef SPEECHLLM_ENGINE_ENGINE_H_
#define SPEECHLLM_ENGINE_ENGINE_H_

#include <atomic>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine_config.h"
#include "engine/model_runner.h"
#include "engine/step_observer.h"
#include "engine/types.h"

namespace speechllm::engine {

class Scheduler;

// Counters for metrics and tests (a snapshot).
struct EngineStats {
  int64_t steps = 0;
  int64_t active_sequences = 0;
  int64_t kv_blocks_total = 0;
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_reserved = 0;
  int64_t tokens_generated = 0;
  // Draft verification: earlier hypothesis tokens re-checked with new audio, and those kept.
  int64_t draft_tokens = 0;
  int64_t draft_accepted_tokens = 0;
  int64_t admission_rejections = 0;
  int64_t prefix_hits = 0;     // segments that shared a cached prompt prefix
  int64_t step_sequences = 0;  // sequences summed over steps (/ steps = mean batch size)
  int64_t kv_blocks_peak = 0;
  // Encoder K/V (block mode's per-segment cache) in positions: the admission budget (0 when the
  // runner counts none), what the admitted streams reserve, and what is cached now.
  int64_t encoder_kv_positions_total = 0;
  int64_t encoder_kv_positions_reserved = 0;
  int64_t encoder_kv_positions_used = 0;
  int64_t encoder_kv_positions_peak = 0;
  int64_t encoder_kv_bytes_per_position = 0;
  // The runner's free device memory at start (-1: unknown), and whether it lowered the automatic
  // encoder budget (to half of it: the rest is for the steps' activations).
  int64_t free_memory_bytes = -1;
  bool encoder_kv_capped_by_memory = false;
  absl::Duration busy_time;                   // time spent in ModelRunner::Execute
  absl::Duration encoder_time, decoder_time;  // the runner's breakdown of busy_time
  // The decoder stage's waits for the device (StepResult::wait_time); on a GPU, busy_time less
  // this is the host's own work.
  absl::Duration wait_time;
};

class Engine {
 public:
  // Takes ownership of `runner` and starts the loop thread.
  Engine(const EngineConfig& config, std::unique_ptr<ModelRunner> runner);
  ~Engine();  // Stop()s
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const ModelConfig& model_config() const { return model_config_; }
  const EngineConfig& config() const { return config_; }

  // Admits a stream: RESOURCE_EXHAUSTED when max_num_sequences are active or the worst-case KV of
  // one more segment (decoder blocks, and encoder positions where counted) does not fit;
  // INVALID_ARGUMENT for a bad config; UNAVAILABLE once stopped.
  absl::StatusOr<SequenceId> AddSequence(const SequenceConfig& config);
  // The KV blocks AddSequence reserves for a stream of `config`: one segment's worst case (the
  // longest prefix the engine accepts, the config's reserved audio and suffix, then
  // max_new_tokens_per_segment).
  int64_t WorstCaseBlocks(const SequenceConfig& config) const;
  // The encoder positions AddSequence reserves for a stream of `config` (2 per reserved audio
  // token and one more), or 0 when the runner counts none or the stream caches none (no partials
  // and exact finals).
  int64_t EncoderPositions(const SequenceConfig& config) const;
  // INVALID_ARGUMENT when a segment of `config`'s worst case (the same parts as WorstCaseBlocks)
  // needs more positions than the model has (max_position_embeddings): the step that ran past them
  // would fail with every stream in it. AddSequence and ResizeReservation refuse such shapes.
  absl::Status CheckPositions(const SequenceConfig& config) const;
  // Grows a stream's reservation to at least `audio_tokens` and `suffix_tokens` per segment (never
  // shrinks it: a segment may still use the old shape; 0 keeps a part as it is). RESOURCE_EXHAUSTED
  // when the KV cache has no room for the growth (the stream keeps its old reservation),
  // INVALID_ARGUMENT beyond the engine's bounds, NOT_FOUND for an unknown id.
  absl::Status ResizeReservation(SequenceId id, int64_t audio_tokens, int64_t suffix_tokens);
  // Work for a sequence, applied in segment order. Chunks and ends of a segment that has not
  // started yet wait for its StartSegment. NOT_FOUND for an unknown or released id;
  // INVALID_ARGUMENT for a prompt longer than the configured limits. Ownership of chunk/end moves
  // to the engine.
  absl::Status StartSegment(SequenceId id, SegmentStart start);
  absl::Status SubmitChunk(SequenceId id, std::unique_ptr<EncoderChunk> chunk);
  absl::Status EndSegment(SequenceId id, std::unique_ptr<SegmentEnd> end);
  // The embedding cache's answer for an end posted with await_embeddings (segment_index names it):
  // rows for a hit, none for a miss. The end, and the ends after it, then go to the scheduler in
  // order; rows that do not fit the end are taken as a miss. NOT_FOUND for a released sequence;
  // INVALID_ARGUMENT for rows that are not num_rows x hidden_size (or more rows than a segment
  // holds), after passing the end on as a miss all the same.
  absl::Status ProvideEmbeddings(SequenceId id, CachedEmbeddings cached);
  // The stream is gone (finished, cancelled or failed): its blocks and encoder state are freed at
  // the next step and later outputs for it are dropped. Unknown ids are ignored.
  void Release(SequenceId id);

  // Outputs in production order; waits up to `timeout` for the first one. After Stop() it returns
  // at once, with what the loop produced before it stopped (later calls: nothing).
  std::vector<SequenceOutput> PopOutputs(absl::Duration timeout);

  // Stops the loop thread; pending work is dropped. Idempotent.
  void Stop();
  EngineStats stats() const;
  // Reports every executed step to `observer` (not owned; null stops the reports), on the loop
  // thread. Set it before traffic; the observer must outlive Stop().
  void SetStepObserver(StepObserver* observer) { step_observer_.store(observer); }
  // How long the step now executing has run; zero between steps. A step that never returns (a
  // hung device) reaches no StepObserver: a watchdog sees it here. Any thread.
  absl::Duration RunningStepTime() const;

 private:
  struct InboxMessage;
  void Loop();
  void DrainInbox() ABSL_LOCKS_EXCLUDED(mutex_);
  // Embedding cache (engine_held_ends.cc, loop thread): an end posted with await_embeddings waits
  // here for its answer, and every later end of its sequence behind it, so the scheduler still
  // sees each sequence's ends in segment order.
  void HoldOrPassEnd(SequenceId id, std::unique_ptr<SegmentEnd> end);
  void AnswerHeldEnd(SequenceId id, CachedEmbeddings cached);
  absl::flat_hash_map<SequenceId, std::deque<std::unique_ptr<SegmentEnd>>> held_ends_;
  absl::Status Post(InboxMessage message);

  const EngineConfig config_;
  const ModelConfig model_config_;
  const int64_t block_size_;  // the runner's KV block, in tokens (fixed at its creation)
  std::unique_ptr<Scheduler> scheduler_;  // loop thread only
  std::unique_ptr<ModelRunner> runner_;   // loop thread only

  mutable absl::Mutex mutex_;
  std::deque<InboxMessage> inbox_ ABSL_GUARDED_BY(mutex_);
  std::deque<SequenceOutput> outputs_ ABSL_GUARDED_BY(mutex_);
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  SequenceId next_id_ ABSL_GUARDED_BY(mutex_) = 1;
  int64_t reserved_blocks_ ABSL_GUARDED_BY(mutex_) = 0;
  // Encoder positions the budget holds (EngineConfig::encoder_kv_cache_bytes, or automatic; 0
  // when the runner counts none) and those reserved.
  static constexpr int64_t kEncoderPositionsPerAudioToken = 2;  // the encoder pools pairs
  const bool encoder_counted_;  // the runner reports bytes per encoder position
  struct EncoderBudget {
    int64_t positions = 0;
    bool capped_by_memory = false;  // automatic, and lowered to half the device's free memory
  };
  // The budget from the config, or automatic (AutomaticEncoderPositions within half the runner's
  // free memory).
  EncoderBudget ChooseEncoderBudget() const;
  const EncoderBudget encoder_budget_;
  int64_t reserved_encoder_positions_ ABSL_GUARDED_BY(mutex_) = 0;
  struct Reservation {
    SequenceId id = kInvalidSequenceId;
    SequenceConfig shape;  // reserved_* resolved to the engine's bounds
    int64_t blocks = 0;
    int64_t encoder_positions = 0;
    // Where the next encoder chunk (or fast-final tail) of segment chunk_segment must start; a
    // new segment's first chunk starts at 0.
    int64_t chunk_segment = -1;
    int64_t next_chunk_position = 0;
  };
  // The automatic encoder budget: enough for any mix of streams that `kv_blocks` admit.
  int64_t AutomaticEncoderPositions(int64_t kv_blocks, int64_t block_size) const;
  // AddSequence's checks and reservation (engine_admission.cc): the new id, or why not.
  absl::StatusOr<SequenceId> Reserve(const SequenceConfig& config)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The admitted sequence's reservation shape; NOT_FOUND for an unknown or released id.
  absl::StatusOr<SequenceConfig> ShapeOf(SequenceId id) ABSL_LOCKS_EXCLUDED(mutex_);
  // INVALID_ARGUMENT unless `chunk` is a whole encoder block the model can take: positions even at
  // the start, within max_source_positions, with the frames they need (chunks, fast-final tails).
  absl::Status CheckChunkShape(const EncoderChunk& chunk) const;
  // INVALID_ARGUMENT unless `chunk` continues the encoder positions of its sequence's segment
  // `segment_index` (its cache ends where the last chunk ended: a gap or an overlap would fail
  // every sequence of the step that encodes it); records its end otherwise.
  absl::Status ContinueChunks(SequenceId id, int64_t segment_index, const EncoderChunk& chunk)
      ABSL_LOCKS_EXCLUDED(mutex_);
  // The admitted sequence's reservation, or reservations_.end().
  std::vector<Reservation>::iterator FindReservation(SequenceId id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // The config with reserved_* resolved: 0 becomes the engine's bound, larger values are clamped.
  SequenceConfig ResolveShape(SequenceConfig config) const;
  std::vector<Reservation> reservations_ ABSL_GUARDED_BY(mutex_);
  EngineStats stats_ ABSL_GUARDED_BY(mutex_);
  std::atomic<StepObserver*> step_observer_{nullptr};
  std::atomic<int64_t> step_started_ns_{0};  // steady clock of the executing step's start; 0: none
  absl::Mutex join_mutex_;  // serializes joining loop_ (Stop() from several threads)
  std::thread loop_ ABSL_GUARDED_BY(join_mutex_);
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_ENGINE_H_
