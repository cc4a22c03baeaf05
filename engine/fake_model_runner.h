// FakeModelRunner: a deterministic toy language model behind the ModelRunner seam, for testing the
// scheduler, sessions and the gRPC layer without weights. Its greedy choice depends only on the
// context: the number n of audio tokens and the number m of tokens after the last audio token
// (NextToken). It mirrors each sequence's KV contents to compute that context. Engine loop thread
// only.
#ifndef SPEECHLLM_ENGINE_FAKE_MODEL_RUNNER_H_
#define SPEECHLLM_ENGINE_FAKE_MODEL_RUNNER_H_

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "engine/model_runner.h"

namespace speechllm::engine {

class FakeModelRunner : public ModelRunner {
 public:
  static constexpr int64_t kStopToken = 511;

  struct Options {
    int64_t num_kv_blocks = 1024;
    int64_t block_size = 16;
    int64_t encoder_kv_bytes_per_position = 0;         // what admission counts (0: nothing)
    int64_t free_memory_bytes = -1;                    // what the device had free (-1: unknown)
    absl::Duration step_delay = absl::ZeroDuration();  // simulated compute per step
    // A simulated device on top (speechllm-bench --simulate_step_cost): a step also takes base +
    // per_decode_row per one-token item + per_prefill_token per token of the other items +
    // per_encoder_position per encoder position, slept after its work; every
    // outlier_every_steps-th step (when > 0) takes `outlier` more, as a device's rare slow steps.
    struct StepCost {
      absl::Duration base, per_decode_row, per_prefill_token, per_encoder_position;
      int64_t outlier_every_steps = 0;
      absl::Duration outlier;
    };
    StepCost step_cost;
    int64_t fail_at_step = -1;  // Execute fails at this step (0-based), as a transient fault
    // Execute fails any step with a prefill item holding this token id (>= 0), after the step's
    // encoder items have run: a sequence whose own work breaks the model.
    int64_t fail_on_token_id = -1;
    // When set, every step first waits for this notification: tests queue work while the engine
    // is held, so what the scheduler sees at once does not depend on thread timing.
    absl::Notification* hold_steps_until = nullptr;
    // When set, notified when the first step starts (before the hold above): a test that posts
    // work after it knows the engine already planned that step and holds in it, so everything
    // posted meanwhile reaches the scheduler in one drain of the engine's inbox.
    absl::Notification* first_step_entered = nullptr;
  };

  explicit FakeModelRunner(const Options& options);

  // The toy model: after `num_audio` audio tokens and `tokens_after_audio` further tokens (suffix
  // and generated text), the next token. The first three choices after the suffix never depend on
  // the audio; later ones change every 8 audio tokens; text stops after 4 + num_audio / 5 tokens
  // past the last audio token.
  static int64_t NextToken(int64_t num_audio, int64_t tokens_after_audio);
  // The toy model's log-probability of its choice `token_id`; any other token than its choice
  // has kUnchosenLogProbability.
  static float LogProbability(int64_t token_id);
  static constexpr float kUnchosenLogProbability = -7.0f;
  // Greedy hypothesis (stop excluded, at most max_tokens) for `num_audio` tokens and a suffix of
  // `suffix_size` tokens.
  static std::vector<int64_t> Greedy(int64_t num_audio, int64_t suffix_size, int max_tokens);

  const ModelConfig& config() const override { return config_; }
  int64_t num_kv_blocks() const override { return options_.num_kv_blocks; }
  int64_t block_size() const override { return options_.block_size; }
  int64_t free_memory_bytes() const override { return options_.free_memory_bytes; }
  int64_t encoder_kv_bytes_per_position() const override {
    return options_.encoder_kv_bytes_per_position;
  }
  // A failed step puts the encoder state of its sequences back (ModelRunner::Execute).
  absl::StatusOr<StepResult> Execute(const StepPlan& plan) override;
  void ResetSequence(SequenceId id) override;

  // For tests, read on the loop thread or after the engine stopped.
  int64_t steps() const { return steps_; }
  const std::vector<int64_t>& step_batch_sizes() const { return step_batch_sizes_; }
  // Encoder positions of each step's encode items (conv positions of blocks and full segments).
  const std::vector<int64_t>& step_encoder_positions() const { return step_encoder_positions_; }
  // The simulated device time of `plan` with `encoder_positions` as the `step`-th step (from 1)
  // (Options::step_cost).
  absl::Duration SimulatedCost(const StepPlan& plan, int64_t encoder_positions, int64_t step) const;
  // Tokens written by prefill items (prompt, audio, drafts, decode tokens) over all steps.
  int64_t prefill_tokens() const { return prefill_tokens_; }
  // The same, per step.
  const std::vector<int64_t>& step_tokens() const { return step_tokens_; }

 private:
  absl::StatusOr<StepResult> Run(const StepPlan& plan);

  Options options_;
  ModelConfig config_;
  absl::flat_hash_map<SequenceId, int64_t> audio_rows_;
  absl::flat_hash_map<SequenceId, int64_t> encoder_positions_;  // conv positions blocks extended
  // [num_kv_blocks * block_size] token ids, kNeverWritten, or kAudioSlot for an audio embedding
  // (a text token with the placeholder's id is text, as in the torch runner).
  std::vector<int64_t> token_pool_;
  static constexpr int64_t kNeverWritten = -1;
  static constexpr int64_t kAudioSlot = -2;
  int64_t steps_ = 0;
  int64_t prefill_tokens_ = 0;
  std::vector<int64_t> step_batch_sizes_;
  std::vector<int64_t> step_encoder_positions_;
  std::vector<int64_t> step_tokens_;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_FAKE_MODEL_RUNNER_H_
