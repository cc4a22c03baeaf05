// Device steps shared by the PagedAttention kernels (paged_attention.cu, paged_attention_tiles.cu,
// paged_attention_mma.cu): a row's block table and KV head; and for the vector kernel and its
// tiled form, loading a warp's keys and values for one iteration through the block table, a lane
// group's dot product, and the online-softmax update of one row's state. Header-only device code;
// model thread.
#ifndef SPEECHLLM_ENGINE_CUDA_PAGED_ATTENTION_STEPS_CUH_
#define SPEECHLLM_ENGINE_CUDA_PAGED_ATTENTION_STEPS_CUH_

#include <cmath>
#include <cstdint>

#include "engine/cuda/device_utils.cuh"
#include "engine/cuda/paged_attention.h"

namespace speechllm::engine::cuda {

// The block table of the sequence of kernel row `row`.
__device__ __forceinline__ const int32_t* BlockTableOf(const PagedAttentionParams& p, int row) {
  return p.block_tables + static_cast<int64_t>(p.row_sequence[row]) * p.max_blocks_per_sequence;
}

// The KV head that query head `head` reads (grouped-query attention).
__device__ __forceinline__ int KvHeadOf(const PagedAttentionParams& p, int head) {
  return head / (p.num_heads / p.num_kv_heads);
}

// Key j = first + u * kKeysPerWarp + group of the sequence whose block table is `table`: this
// lane's 16-byte piece of its key and value rows for head `kv_head`, zeros past `context`. Block
// sizes that are powers of two take a shift and a mask instead of a division.
template <int kLanesPerKey, int kKeysPerWarp, int kUnroll>
__device__ __forceinline__ void LoadKeysAndValues(const PagedAttentionParams& p,
                                                  const int32_t* table, int kv_head, int first,
                                                  int group, int piece, int context,
                                                  uint4 (&key)[kUnroll], uint4 (&value)[kUnroll]) {
  const uint4* keys = static_cast<const uint4*>(p.key_cache);
  const uint4* values = static_cast<const uint4*>(p.value_cache);
  const bool power_of_two = (p.block_size & (p.block_size - 1)) == 0;
  const int block_shift = __ffs(p.block_size) - 1;
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    const int j = first + u * kKeysPerWarp + group;
    key[u] = make_uint4(0, 0, 0, 0);
    value[u] = make_uint4(0, 0, 0, 0);
    if (j < context) {
      const int block = power_of_two ? j >> block_shift : j / p.block_size;
      const int offset = power_of_two ? j & (p.block_size - 1) : j % p.block_size;
      const int64_t slot = static_cast<int64_t>(table[block]) * p.block_size + offset;
      const int64_t at = (slot * p.num_kv_heads + kv_head) * kLanesPerKey + piece;
      key[u] = keys[at];
      value[u] = values[at];
    }
  }
}

// The dot product of a query piece with a key piece, summed over the kLanesPerKey lanes of the
// lane group (the shuffles stay inside it; every lane of the warp must call it).
template <typename T, int kLanesPerKey, int kPerLoad>
__device__ __forceinline__ float LaneGroupDot(const float (&q)[kPerLoad], const uint4& key) {
  float dot = 0.0f;
#pragma unroll
  for (int e = 0; e < kPerLoad; ++e) dot += q[e] * Element<T>(key, e);
#pragma unroll
  for (int offset = kLanesPerKey / 2; offset > 0; offset /= 2) {
    dot += __shfl_xor_sync(0xffffffffu, dot, offset);
  }
  return dot;
}

// One iteration's scores (-inf where masked) into a row's online softmax: running maximum and
// sum, and the value-weighted sum of this lane's piece. With kBase2 the scores are in base 2
// (scaled by log2 e) and exp2f replaces expf.
template <typename T, int kPerLoad, int kUnroll, bool kBase2>
__device__ __forceinline__ void SoftmaxUpdate(const float (&score)[kUnroll],
                                              const uint4 (&value)[kUnroll], float* running_max,
                                              float* running_sum, float (&acc)[kPerLoad]) {
  const auto exp = [](float x) { return kBase2 ? exp2f(x) : expf(x); };
  float step_max = -INFINITY;
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) step_max = fmaxf(step_max, score[u]);
  const float new_max = fmaxf(*running_max, step_max);
  // Nothing visible yet (new_max still -inf) leaves the state at zero; no inf - inf below.
  const float correction = *running_max == -INFINITY ? 0.0f : exp(*running_max - new_max);
  *running_sum *= correction;
#pragma unroll
  for (int e = 0; e < kPerLoad; ++e) acc[e] *= correction;
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    const float weight = score[u] == -INFINITY ? 0.0f : exp(score[u] - new_max);
    *running_sum += weight;
#pragma unroll
    for (int e = 0; e < kPerLoad; ++e) acc[e] += weight * Element<T>(value[u], e);
  }
  *running_max = new_max;
}

}  // namespace speechllm::engine::cuda

#endif  // SPEECHLLM_ENGINE_CUDA_PAGED_ATTENTION_STEPS_CUH_
