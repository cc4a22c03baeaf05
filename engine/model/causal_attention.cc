#include "engine/model/causal_attention.h"

#include <cmath>
#include <limits>

#include "engine/model/torch_compat.h"

namespace speechllm::engine {

at::Tensor CausalAttention(const at::Tensor& query, const at::Tensor& keys,
                           const at::Tensor& values, int64_t start_position) {
  const int64_t new_tokens = query.size(0), num_heads = query.size(1), head_dim = query.size(2);
  const int64_t context = keys.size(0);
  const int64_t group = num_heads / keys.size(1);
  // [heads, tokens, head_dim]; KV heads repeated as transformers' repeat_kv does.
  const at::Tensor q = query.transpose(0, 1);
  const at::Tensor k = (group == 1 ? keys : keys.repeat_interleave(group, 1)).transpose(0, 1);
  const at::Tensor v = (group == 1 ? values : values.repeat_interleave(group, 1)).transpose(0, 1);
  // Key j is visible to new token i when j <= start_position + i.
  const bool needs_mask = new_tokens > 1;
  at::Tensor context_out;
  if (query.is_cuda()) {
    // Nothing cached: the plain causal pattern, which SDPA's fused kernels take without a mask.
    const bool plain_causal = needs_mask && start_position == 0 && context == new_tokens;
    c10::optional<at::Tensor> mask;
    if (needs_mask && !plain_causal) {
      const at::Tensor key_positions = at::arange(context, query.options().dtype(at::kLong));
      const at::Tensor query_positions =
          at::arange(new_tokens, key_positions.options()) + start_position;
      mask = key_positions.unsqueeze(0) <= query_positions.unsqueeze(1);  // true = attend
    }
    context_out = ScaledDotProductAttention(q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0), mask,
                                            plain_causal)
                      .squeeze(0);
  } else {
    const double scaling = 1.0 / std::sqrt(static_cast<double>(head_dim));
    at::Tensor scores = at::matmul(q, k.transpose(1, 2)) * scaling;  // [heads, new_tokens, context]
    if (needs_mask) {
      const at::Tensor key_positions = at::arange(context, at::TensorOptions().dtype(at::kLong));
      const at::Tensor query_positions =
          at::arange(new_tokens, key_positions.options()) + start_position;
      const at::Tensor hidden = key_positions.unsqueeze(0) > query_positions.unsqueeze(1);
      scores = scores.masked_fill(hidden.unsqueeze(0), -std::numeric_limits<float>::infinity());
    }
    const at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(query.scalar_type());
    context_out = at::matmul(probs, v);
  }
  return context_out.transpose(0, 1).reshape({new_tokens, num_heads * head_dim});
}

at::Tensor PaddedCausalAttention(const at::Tensor& query, const at::Tensor& keys,
                                 const at::Tensor& values, const at::Tensor& mask) {
  const int64_t batch = query.size(0), max_query = query.size(1), num_heads = query.size(2),
                head_dim = query.size(3);
  const int64_t context = keys.size(1), kv_heads = keys.size(2), group = num_heads / kv_heads;
  at::Tensor out;
  if (query.is_cuda()) {
    const at::Tensor q = query.transpose(1, 2);  // [batch, heads, max_query, head_dim]
    const at::Tensor k = (group == 1 ? keys : keys.repeat_interleave(group, 2)).transpose(1, 2);
    const at::Tensor v = (group == 1 ? values : values.repeat_interleave(group, 2)).transpose(1, 2);
    out = ScaledDotProductAttention(q, k, v, mask, false).transpose(1, 2);
  } else {
    // Grouped-query attention without copying keys per query head: the `group` query heads that
    // share a KV head are stacked as extra query rows, [batch, kv_heads, group * max_query,
    // head_dim].
    const at::Tensor q = query.view({batch, max_query, kv_heads, group, head_dim})
                             .permute({0, 2, 3, 1, 4})
                             .reshape({batch, kv_heads, group * max_query, head_dim});
    const at::Tensor k =
        keys.permute({0, 2, 3, 1}).contiguous();  // [batch, kv_heads, head_dim, context]
    const at::Tensor v =
        values.transpose(1, 2).contiguous();  // [batch, kv_heads, context, head_dim]
    const double scaling = 1.0 / std::sqrt(static_cast<double>(head_dim));
    const at::Tensor scores =
        (at::matmul(q, k) * scaling).view({batch, kv_heads, group, max_query, context}) +
        mask.unsqueeze(1);
    const at::Tensor probs = at::softmax(scores, -1, at::kFloat)
                                 .to(query.scalar_type())
                                 .view({batch, kv_heads, group * max_query, context});
    out = at::matmul(probs, v)
              .view({batch, kv_heads, group, max_query, head_dim})
              .permute({0, 3, 1, 2, 4});  // [batch, max_query, kv_heads, group, head_dim]
  }
  return out.reshape({batch * max_query, num_heads * head_dim});
}

}  // namespace speechllm::engine
