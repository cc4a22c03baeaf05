#include "engine/model/layers.h"

#include <ATen/core/grad_mode.h>

#include "absl/strings/str_cat.h"
#include "engine/model/cuda_kernels.h"
#include "engine/status_macros.h"

namespace speechllm::engine {

absl::StatusOr<Linear> Linear::Load(const WeightLoader& loader, const std::string& prefix,
                                    int64_t in_features, int64_t out_features, bool with_bias) {
  Linear linear;
  SPEECHLLM_ASSIGN_OR_RETURN(linear.weight,
                             loader.Load(prefix + ".weight", {out_features, in_features}));
  if (with_bias) {
    SPEECHLLM_ASSIGN_OR_RETURN(linear.bias, loader.Load(prefix + ".bias", {out_features}));
  }
  return linear;
}

at::Tensor Linear::Forward(const at::Tensor& x) const {
  if (skinny_max_rows > 0 && x.dim() == 2 && x.size(0) >= 1 && x.size(0) <= skinny_max_rows &&
      CudaKernelsEnabled(x.device())) {
    at::Tensor out = CudaSkinnyLinear(x, weight, bias);
    if (out.defined()) return out;
  }
  return at::linear(x, weight, bias);
}

void Linear::AppendTo(const std::string& prefix, std::vector<NamedTensor>* out) const {
  out->push_back({prefix + ".weight", weight});
  if (bias.defined()) out->push_back({prefix + ".bias", bias});
}

Linear FuseLinears(const std::vector<Linear*>& parts) {
  std::vector<at::Tensor> weights, biases;
  bool any_bias = false;
  for (const Linear* part : parts) any_bias |= part->bias.defined();
  for (const Linear* part : parts) {
    weights.push_back(part->weight);
    if (any_bias) {
      biases.push_back(part->bias.defined()
                           ? part->bias
                           : at::zeros({part->weight.size(0)}, part->weight.options()));
    }
  }
  Linear fused;
  fused.weight = at::cat(weights, 0);
  if (any_bias) fused.bias = at::cat(biases, 0);
  int64_t row = 0;
  for (Linear* part : parts) {
    const int64_t rows = part->weight.size(0);
    part->weight = fused.weight.narrow(0, row, rows);
    if (part->bias.defined()) part->bias = fused.bias.narrow(0, row, rows);
    row += rows;
  }
  return fused;
}

std::vector<at::Tensor> ForwardFused(const Linear& fused, const std::vector<const Linear*>& parts,
                                     const at::Tensor& x) {
  std::vector<at::Tensor> out;
  if (at::GradMode::is_enabled()) {
    for (const Linear* part : parts) out.push_back(part->Forward(x));
    return out;
  }
  const at::Tensor product = fused.Forward(x);
  int64_t column = 0;
  for (const Linear* part : parts) {
    const int64_t width = part->weight.size(0);
    out.push_back(product.narrow(-1, column, width));
    column += width;
  }
  return out;
}

absl::StatusOr<LayerNorm> LayerNorm::Load(const WeightLoader& loader, const std::string& prefix,
                                          int64_t dim, double eps) {
  LayerNorm norm;
  norm.eps = eps;
  SPEECHLLM_ASSIGN_OR_RETURN(norm.weight, loader.Load(prefix + ".weight", {dim}));
  SPEECHLLM_ASSIGN_OR_RETURN(norm.bias, loader.Load(prefix + ".bias", {dim}));
  return norm;
}

absl::StatusOr<RmsNorm> RmsNorm::Load(const WeightLoader& loader, const std::string& name,
                                      int64_t dim, double eps) {
  RmsNorm norm;
  norm.eps = eps;
  SPEECHLLM_ASSIGN_OR_RETURN(norm.weight, loader.Load(name, {dim}));
  return norm;
}

at::Tensor RmsNorm::Forward(const at::Tensor& x) const {
  if (CudaKernelsEnabled(x.device())) return CudaRmsNorm(x, weight, eps);
  const at::Tensor x32 = x.to(at::kFloat);
  const at::Tensor variance = x32.pow(2).mean(-1, /*keepdim=*/true);
  return weight * (x32 * at::rsqrt(variance + eps)).to(x.scalar_type());
}

std::pair<at::Tensor, at::Tensor> RmsNorm::AddAndForward(const at::Tensor& x,
                                                         const at::Tensor& residual) const {
  if (CudaKernelsEnabled(x.device())) return CudaAddRmsNorm(x, residual, weight, eps);
  const at::Tensor sum = x + residual;
  return {sum, Forward(sum)};
}

RotaryEmbedding::RotaryEmbedding(int64_t head_dim, double theta, int64_t max_positions,
                                 at::ScalarType dtype, at::Device device) {
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  // inv_freq = 1 / theta^(2i / d), as transformers computes it in float32.
  const at::Tensor exponents =
      at::arange(0, head_dim, 2, at::TensorOptions().dtype(at::kLong)).to(at::kFloat) /
      static_cast<double>(head_dim);
  const at::Tensor inv_freq = 1.0 / at::pow(theta, exponents);
  const at::Tensor positions = at::arange(max_positions, f32);
  const at::Tensor freqs = at::outer(positions, inv_freq);  // one float32 product per entry
  const at::Tensor angles = at::cat({freqs, freqs}, -1);
  cos_ = angles.cos().to(dtype).to(device);
  sin_ = angles.sin().to(dtype).to(device);
}

at::Tensor RotaryEmbedding::Apply(const at::Tensor& x, const at::Tensor& positions) const {
  if (CudaKernelsEnabled(x.device())) return CudaRotary(x, positions, cos_, sin_);
  const at::Tensor cos = cos_.index_select(0, positions).unsqueeze(1);  // [tokens, 1, head_dim]
  const at::Tensor sin = sin_.index_select(0, positions).unsqueeze(1);
  const int64_t half = x.size(-1) / 2;
  const at::Tensor rotated = at::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  return x * cos + rotated * sin;
}

at::Tensor ClampFloat16Overflow(const at::Tensor& x) {
  if (x.scalar_type() != at::kHalf) return x;
  constexpr double kClamp = 65504.0 - 1000.0;  // torch.finfo(torch.float16).max - 1000
  const at::Tensor overflowed = at::logical_or(at::isinf(x), at::isnan(x)).any();
  // Clamped in float32 (exact: a float16 value widens without loss) and rounded back, as HF's
  // float16 clamp rounds its bound (64504 -> 64512); CPU libtorch 1.13 has no float16 clamp.
  return at::where(overflowed, at::clamp(x.to(at::kFloat), -kClamp, kClamp).to(at::kHalf), x);
}

}  // namespace speechllm::engine
