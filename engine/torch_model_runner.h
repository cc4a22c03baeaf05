// TorchModelRunner: executes StepPlans with the libtorch Qwen2-Audio model: block-mode and full
// encoder items (per-sequence encoder K/V cache and audio-embedding store), then one decoder pass
// over every prefill piece and decode token of the step against the paged KvPool, then greedy
// choices. Torch errors become INTERNAL statuses. Created on any thread, then used only by the
// engine loop.
#ifndef SPEECHLLM_ENGINE_TORCH_MODEL_RUNNER_H_
#define SPEECHLLM_ENGINE_TORCH_MODEL_RUNNER_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "engine/model/runtime_options.h"
#include "engine/model_runner.h"

namespace speechllm::engine {

struct TorchRunnerConfig {
  RuntimeOptions runtime;
  int64_t block_size = 16;
  // KV pool size: num_kv_blocks if > 0, else as many blocks as kv_cache_bytes hold.
  int64_t num_kv_blocks = 0;
  int64_t kv_cache_bytes = 256ll << 20;
  // Decode steps of up to this many sequences replay CUDA graphs (DecodeGraphs), captured at
  // creation, where the build and device support them; 0 = never.
  int64_t cuda_graph_max_batch = 64;
  // Encoder passes with every item batched (AudioEncoder::ConvStems and EncodeBatch's batched
  // attention: a fixed number of operations per pass) or item by item (transformers' operations).
  // Unset: batched on CUDA, where per-item launches dominate, item by item on the CPU. A batched
  // pass of exact finals alone replays the encoder's whole-segment CUDA graphs where supported
  // (EncoderPass::kGraphs).
  std::optional<bool> batched_encoder;
  // Wait for the device after each step's encoder pass, so that StepResult's encoder and decoder
  // times are device times (benchmarks: it costs the overlap of the decoder's launches with the
  // encoder's kernels). Without it, a GPU step's encoder time is mostly the host's launch time.
  bool sync_stage_times = false;
};

class TorchModelRunner : public ModelRunner {
 public:
  static absl::StatusOr<std::unique_ptr<TorchModelRunner>> Create(const std::string& model_dir,
                                                                  const TorchRunnerConfig& config);
  // Random weights of `model_config`'s shapes (benchmarks without a checkpoint).
  static absl::StatusOr<std::unique_ptr<TorchModelRunner>> CreateRandom(
      const ModelConfig& model_config, const TorchRunnerConfig& config, uint64_t seed);
  ~TorchModelRunner() override;

  const ModelConfig& config() const override;
  int64_t num_kv_blocks() const override;
  int64_t block_size() const override;
  int64_t encoder_kv_bytes_per_position() const override;
  int64_t free_memory_bytes() const override;
  int64_t encoder_kv_positions_used() const override;
  absl::StatusOr<StepResult> Execute(const StepPlan& plan) override;
  void ResetSequence(SequenceId id) override;
  // One line for logs: how many decode and encoder graphs were captured, or why none were.
  const std::string& graphs_summary() const;
  // The model's CPU thread settings (Qwen2AudioModel::threads_summary), for start-up logs.
  const std::string& threads_summary() const;

 private:
  struct Impl;
  explicit TorchModelRunner(std::unique_ptr<Impl> impl);
  static absl::StatusOr<std::unique_ptr<TorchModelRunner>> Finish(std::unique_ptr<Impl> impl,
                                                                  const TorchRunnerConfig& config);
  std::unique_ptr<Impl> impl_;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_TORCH_MODEL_RUNNER_H_
