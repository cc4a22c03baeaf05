// The differences between Debian's libtorch 1.13 (CPU) and the libtorch 2.x of GPU machines, behind
// one header: scaled-dot-product attention is private in 1.13 and public from 2.0, and its cuDNN
// backend is switched from 2.5 on. Header-only; any thread (KeepAttentionOffCudnn at model load).
#ifndef SPEECHLLM_ENGINE_MODEL_TORCH_COMPAT_H_
#define SPEECHLLM_ENGINE_MODEL_TORCH_COMPAT_H_

#include <ATen/ATen.h>
#include <torch/version.h>

#include <cstdlib>
#include <string>
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

// Keeps scaled-dot-product attention off cuDNN's backend (switched in libtorch 2.5 and later, which
// surely have it; newer ones may prefer it on Hopper): it builds an execution plan for every new
// shape, and the padded decoder group and the encoder's batched attention change shape from step to
// step. The flash and memory-efficient kernels need no plan. SPEECHLLM_CUDNN_ATTENTION=1 leaves
// libtorch's choice. True when cuDNN's attention was switched off.
inline bool KeepAttentionOffCudnn() {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
  const char* keep = std::getenv("SPEECHLLM_CUDNN_ATTENTION");
  if (keep != nullptr && std::string(keep) == "1") return false;
  at::globalContext().setSDPUseCuDNN(false);
  return true;
#else
  return false;
#endif
}

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_TORCH_COMPAT_H_
