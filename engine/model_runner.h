// ModelRunner: the one seam between scheduling and compute. TorchModelRunner owns the weights, the
// paged KV pool and per-sequence encoder state; FakeModelRunner replays a deterministic toy model
// so that the scheduler, sessions and the gRPC layer test without weights. Called only from the
// engine loop thread.
#ifndef SPEECHLLM_ENGINE_MODEL_RUNNER_H_
#define SPEECHLLM_ENGINE_MODEL_RUNNER_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "engine/model/model_config.h"
#include "engine/step_plan.h"

namespace speechllm::engine {

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;

  virtual const ModelConfig& config() const = 0;
  // KV blocks of `block_size()` tokens the runner holds for all sequences together.
  virtual int64_t num_kv_blocks() const = 0;
  virtual int64_t block_size() const = 0;
  // Bytes one cached encoder position takes (block mode keeps every layer's key and value of each
  // position of a segment); 0 when the runner keeps none worth counting. Admission counts them.
  virtual int64_t encoder_kv_bytes_per_position() const { return 0; }
  // Encoder positions cached now, over all sequences.
  virtual int64_t encoder_kv_positions_used() const { return 0; }
  // Bytes the runner's device had free once the weights and the KV cache were allocated (read
  // once, at creation); -1 when unknown. The automatic encoder K/V budget stays within half of it.
  virtual int64_t free_memory_bytes() const { return -1; }

  // Runs one step. A failure (INTERNAL for torch errors) leaves every sequence's runner state
  // (encoder caches, audio embeddings) as it was before the step, so that the engine can run the
  // step's sequences again in smaller steps and fail only those whose own work fails
  // (ExecuteIsolatingFailures). KV positions a failed step wrote are written again by the rerun.
  virtual absl::StatusOr<StepResult> Execute(const StepPlan& plan) = 0;
  // Drops the encoder cache and audio embeddings of a sequence's segment (a new segment starts or
  // the sequence is released). KV blocks are the caller's bookkeeping and need no call.
  virtual void ResetSequence(SequenceId id) = 0;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_RUNNER_H_
