// The differences between Debian's libtorch 1.13 (CPU) and the libtorch 2.x of GPU machines, behind
// one header: scaled-dot-product attention is private in 1.13 and public from 2.0. Header-only; any
// thread.
#ifndef SPEECHLLM_ENGINE_MODEL_TORCH_COMPAT_H_
#define SPEECHLLM_ENGINE_MODEL_TORCH_COMPAT_H_

#include <ATen/ATen.h>
#include <torch/version.h>

#include <tuple>

namespace speechllm::engine {

// softmax(q k^T / sqrt(d) + mask) v over [batch, heads, tokens, head_dim] tensors; `mask` is
// additive (or boolean, true = attend) and broadcastable to [batch, heads, queries, keys].
inline at::Tensor ScaledDotProductAttention(const at::Tensor& query, const at::Tensor& key,
                                            const at::Tensor& value,
                                            const c10::optional<at::Tensor>& mask, bool is_causal) {
#if TORCH_VERSION_MAJOR >= 2
  return at::scaled_dot_product_attention(query, key, value, mask, /*dropout_p=*/0.0, is_causal);
#else
  return std::get<0>(at::_scaled_dot_product_attention(query, key, value, mask, /*dropout_p=*/0.0,
                                                       /*need_attn_weights=*/false, is_causal));
#endif
}

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_TORCH_COMPAT_H_
