// Building blocks shared by the audio encoder and the decoder: linear and normalisation layers with
// their loaded weights, and the rotary position table. Weights are immutable after load; Forward
// methods are const and called on the thread that runs the model (the engine loop).
#ifndef SPEECHLLM_ENGINE_MODEL_LAYERS_H_
#define SPEECHLLM_ENGINE_MODEL_LAYERS_H_

#include <ATen/ATen.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/weight_loader.h"

namespace speechllm::engine {

// A weight under its Hugging Face checkpoint name. The tensor shares storage with the module's own,
// so the trainer (tools/train) can mark it trainable and update it in place.
struct NamedTensor {
  std::string name;
  at::Tensor tensor;
};

struct Linear {
  at::Tensor weight;  // [out_features, in_features]
  at::Tensor bias;    // [out_features] or undefined

  // Loads `prefix`.weight and, when `with_bias`, `prefix`.bias.
  static absl::StatusOr<Linear> Load(const WeightLoader& loader, const std::string& prefix,
                                     int64_t in_features, int64_t out_features, bool with_bias);
  // Inputs of up to this many rows take the project's skinny GEMM on CUDA instead of cuBLAS: set
  // where it was faster at model load (linear_tuning.h); 0 = always at::linear.
  int64_t skinny_max_rows = 0;

  at::Tensor Forward(const at::Tensor& x) const;
  // Appends `prefix`.weight (and .bias when present).
  void AppendTo(const std::string& prefix, std::vector<NamedTensor>* out) const;
};

// Linears of one input fused into one product (e.g. q/k/v, gate/up): their weights and biases
// concatenated by output row. Each part's weight and bias become views of the fused tensors
// (contiguous row blocks), so checkpoint names and in-place updates still reach them. A part
// without a bias (Whisper's k_proj) has zeros in the fused bias and keeps none of its own.
Linear FuseLinears(const std::vector<Linear*>& parts);

// The outputs of `parts` for x: column blocks (views) of `fused`'s one product; with autograd on
// (the trainer), each part's own product instead, so that each checkpoint tensor (a view of the
// fused weight) gets its own gradient.
std::vector<at::Tensor> ForwardFused(const Linear& fused, const std::vector<const Linear*>& parts,
                                     const at::Tensor& x);

struct LayerNorm {
  at::Tensor weight, bias;
  double eps = 1e-5;

  static absl::StatusOr<LayerNorm> Load(const WeightLoader& loader, const std::string& prefix,
                                        int64_t dim, double eps);
  at::Tensor Forward(const at::Tensor& x) const {
    return at::layer_norm(x, {weight.size(0)}, weight, bias, eps);
  }
  void AppendTo(const std::string& prefix, std::vector<NamedTensor>* out) const {
    out->push_back({prefix + ".weight", weight});
    out->push_back({prefix + ".bias", bias});
  }
};

// Qwen2 RMSNorm (MODEL.md 4.2): normalise in float32, cast back to the input dtype, then scale by
// the weight in that dtype.
struct RmsNorm {
  at::Tensor weight;
  double eps = 1e-6;

  static absl::StatusOr<RmsNorm> Load(const WeightLoader& loader, const std::string& name,
                                      int64_t dim, double eps);
  at::Tensor Forward(const at::Tensor& x) const;
  // The residual add before the norm, and the norm: {x + residual, Forward(x + residual)}, in one
  // CUDA launch where the fused kernels run.
  std::pair<at::Tensor, at::Tensor> AddAndForward(const at::Tensor& x,
                                                  const at::Tensor& residual) const;
};

// Whisper's float16 guard, kept by Qwen2-Audio's encoder layers (MODEL.md 2.2): when a layer's
// output holds an inf or NaN, it is clamped to +-(65504 - 1000). Other dtypes pass unchanged.
// Branch-free on the device (no host sync), so CUDA graphs capture it.
at::Tensor ClampFloat16Overflow(const at::Tensor& x);

// Rotary embedding table of Qwen2 (rotate-half layout, MODEL.md 4.2): cos/sin of position *
// inv_freq computed in float32 for positions [0, max_positions), cast to the activation dtype.
class RotaryEmbedding {
 public:
  RotaryEmbedding(int64_t head_dim, double theta, int64_t max_positions, at::ScalarType dtype,
                  at::Device device);

  // x: [tokens, heads, head_dim]; positions: int64 [tokens] on the table's device.
  at::Tensor Apply(const at::Tensor& x, const at::Tensor& positions) const;
  int64_t max_positions() const { return cos_.size(0); }
  const at::Tensor& cos() const { return cos_; }
  const at::Tensor& sin() const { return sin_; }

 private:
  at::Tensor cos_, sin_;  // [max_positions, head_dim]
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_LAYERS_H_
