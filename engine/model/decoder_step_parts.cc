// Decoder::TimeStepParts (decoder.h): device time of each part of a decode step, for the GPU
// benchmark's breakdown of where a step goes (tools/bench/model_timing.cc). Not used in serving.
#include <functional>

#include "engine/model/cuda_kernels.h"
#include "engine/model/decoder.h"

namespace speechllm::engine {

std::vector<std::pair<std::string, double>> Decoder::TimeStepParts(const at::Tensor& hidden,
                                                                   const DecoderBatch& batch,
                                                                   KvPool* kv, int reps) const {
  TORCH_CHECK(CudaKernelsEnabled(hidden.device()) && !layers_.empty(),
              "step parts are timed on CUDA with the project's kernels");
  TORCH_CHECK(hidden.size(0) > 0 && batch.kernel_num_rows == hidden.size(0),
              "step parts are timed for a batch whose rows all take the PagedAttention kernel");
  const int num_layers = static_cast<int>(layers_.size());
  // Each call of a part takes the next layer's weights and KV, so that they come from memory as
  // in a step (one layer's o_proj or KV would stay in the L2 cache over repetitions).
  int next = 0;
  const auto take = [&] { return next++ % num_layers; };
  // Microseconds per call; one untimed call first (cuBLAS picks its algorithm, the allocator
  // caches the outputs).
  const auto time_us = [&](const std::function<void()>& part) {
    part();
    return 1000.0 * CudaDeviceMsPerRep(hidden.device(), reps, part);
  };
  const double layers = static_cast<double>(num_layers);
  std::vector<std::pair<std::string, double>> parts;
  const at::Tensor normed = layers_[0].input_layernorm.Forward(hidden);
  parts.emplace_back("add_rms_norms", 2 * layers * time_us([&] {
                                        layers_[take()].post_attention_layernorm.AddAndForward(
                                            hidden, normed);
                                      }));
  const at::Tensor product = layers_[0].qkv_proj.Forward(normed);
  parts.emplace_back("qkv_proj",
                     layers * time_us([&] { layers_[take()].qkv_proj.Forward(normed); }));
  const auto rotary_and_write = [&](int layer) {
    return CudaRotaryQkvToPool(product, config_.num_heads, config_.num_kv_heads, batch.positions,
                               batch.slots, rotary_.cos(), rotary_.sin(), kv->keys(layer),
                               kv->values(layer), /*want_keys=*/false);
  };
  const at::Tensor q = rotary_and_write(0).first;
  parts.emplace_back("rotary_kv_write", layers * time_us([&] { rotary_and_write(take()); }));
  const auto attention = [&](int layer) {
    return CudaPagedAttention(q, kv->keys(layer), kv->values(layer), batch, kv->block_size());
  };
  const at::Tensor context = attention(0);
  parts.emplace_back("attention", layers * time_us([&] { attention(take()); }));
  parts.emplace_back("o_proj", layers * time_us([&] { layers_[take()].o_proj.Forward(context); }));
  const at::Tensor gate_up = layers_[0].gate_up_proj.Forward(normed);
  parts.emplace_back("gate_up_proj",
                     layers * time_us([&] { layers_[take()].gate_up_proj.Forward(normed); }));
  const int64_t width = gate_up.size(-1) / 2;
  const at::Tensor gate = gate_up.narrow(-1, 0, width), up = gate_up.narrow(-1, width, width);
  const at::Tensor activated = CudaSwiGlu(gate, up);
  parts.emplace_back("swiglu", layers * time_us([&] { CudaSwiGlu(gate, up); }));
  parts.emplace_back("down_proj",
                     layers * time_us([&] { layers_[take()].down_proj.Forward(activated); }));
  parts.emplace_back("final_norm_lm_head",
                     time_us([&] { lm_head_.Forward(norm_.Forward(hidden)).argmax(-1); }));
  return parts;
}

}  // namespace speechllm::engine
