// Causal multi-head / grouped-query attention of new query tokens over a sequence's cached keys and
// values (MODEL.md 4.2: scale 1/sqrt(head_dim), causal mask, softmax in float32). On CPU it follows
// transformers' eager path operation by operation; on CUDA it calls scaled-dot-product attention.
// Stateless; called on the thread that runs the model.
#ifndef SPEECHLLM_ENGINE_MODEL_CAUSAL_ATTENTION_H_
#define SPEECHLLM_ENGINE_MODEL_CAUSAL_ATTENTION_H_

#include <ATen/ATen.h>

#include <cstdint>

namespace speechllm::engine {

// query: [new_tokens, num_heads, head_dim] at positions start_position .. start_position +
// new_tokens - 1; keys/values: [start_position + new_tokens, num_kv_heads, head_dim]. Query head h
// reads KV head h / (num_heads / num_kv_heads). Returns [new_tokens, num_heads * head_dim].
at::Tensor CausalAttention(const at::Tensor& query, const at::Tensor& keys,
                           const at::Tensor& values, int64_t start_position);

// The same over several sequences at once, padded: query [batch, max_query, num_heads, head_dim],
// keys/values [batch, max_context, num_kv_heads, head_dim], additive mask [batch, 1, max_query,
// max_context]. Returns [batch * max_query, num_heads * head_dim] (padding rows included).
at::Tensor PaddedCausalAttention(const at::Tensor& query, const at::Tensor& keys,
                                 const at::Tensor& values, const at::Tensor& mask);

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_CAUSAL_ATTENTION_H_
