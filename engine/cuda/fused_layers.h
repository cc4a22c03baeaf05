// Fused decoder layers for CUDA: RMSNorm, rotary position embedding (alone, or with the KV pool
// write of a layer's keys and values) and the SwiGLU product, each one launch instead of libtorch's
// chain of element-wise kernels (decode steps are short enough that launches, not bytes, cost the
// time). Each reproduces the rounding of the libtorch layer it replaces (engine/model/layers.cc),
// without FMA contraction. Torch- and CUDA-header-free; model thread.
#ifndef SPEECHLLM_ENGINE_CUDA_FUSED_LAYERS_H_
#define SPEECHLLM_ENGINE_CUDA_FUSED_LAYERS_H_

#include <cstdint>

#include "engine/cuda/paged_attention.h"

namespace speechllm::engine::cuda {

// out[r] = weight * dtype(x[r] * rsqrt(mean(x[r]^2) + eps)), statistics in float32. x, out:
// [rows, hidden] contiguous; weight: [hidden].
const char* LaunchRmsNorm(const void* x, const void* weight, void* out, int64_t rows,
                          int32_t hidden, float eps, AttentionDtype dtype, void* stream);

// The residual add before a norm and the norm in one launch: sum = dtype(x + residual), out =
// RMSNorm(sum) as LaunchRmsNorm. All [rows, hidden] contiguous; sum may be x itself.
const char* LaunchAddRmsNorm(const void* x, const void* residual, const void* weight, void* sum,
                             void* out, int64_t rows, int32_t hidden, float eps,
                             AttentionDtype dtype, void* stream);

// Rotary embedding of x [tokens, heads, head_dim] at int64 positions [tokens] with cos/sin tables
// [max_positions, head_dim] in the same dtype: out = x * cos + rotate_half(x) * sin. x's tokens are
// x_token_stride elements apart (>= heads * head_dim: q or k as columns of a fused q/k/v product),
// its heads contiguous within a token; out is contiguous.
const char* LaunchRotary(const void* x, int64_t x_token_stride, const int64_t* positions,
                         const void* cos, const void* sin, void* out, int64_t tokens, int32_t heads,
                         int32_t head_dim, AttentionDtype dtype, void* stream);

// The q/k/v step of a decoder layer in one launch instead of four (two rotary launches and the
// pool's two index copies). `qkv`: the fused product [tokens, heads + 2 kv_heads heads of
// head_dim], q heads then k heads then v heads, rows qkv_row_stride elements apart. Writes
// rotary(q) to q_out [tokens, heads, head_dim], rotary(k) and v to pool rows `slots` of key_cache
// and value_cache [pool slots, kv_heads, head_dim], and rotary(k) to k_out [tokens, kv_heads,
// head_dim] too when it is not null. Rotary exactly as LaunchRotary; slots are not range-checked.
struct RotaryQkvParams {
  const void* qkv = nullptr;
  int64_t qkv_row_stride = 0;
  const int64_t* positions = nullptr;  // [tokens]
  const int64_t* slots = nullptr;      // [tokens]
  const void* cos = nullptr;           // [max_positions, head_dim]
  const void* sin = nullptr;
  void* q_out = nullptr;
  void* k_out = nullptr;  // optional
  void* key_cache = nullptr;
  void* value_cache = nullptr;
  int64_t tokens = 0;
  int32_t heads = 0, kv_heads = 0, head_dim = 0;
  AttentionDtype dtype = AttentionDtype::kFloat32;
  void* stream = nullptr;
};
const char* LaunchRotaryQkvToPool(const RotaryQkvParams& p);

// out = dtype(silu(gate)) * up over [rows, width]: gate and up rows are in_row_stride elements
// apart (>= width: the two halves of a fused gate/up product), out is contiguous.
const char* LaunchSwiGlu(const void* gate, const void* up, int64_t in_row_stride, void* out,
                         int64_t rows, int64_t width, AttentionDtype dtype, void* stream);

}  // namespace speechllm::engine::cuda

#endif  // SPEECHLLM_ENGINE_CUDA_FUSED_LAYERS_H_
