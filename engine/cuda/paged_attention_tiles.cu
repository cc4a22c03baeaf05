// The tiled PagedAttention kernel (paged_attention_tiles.h): the vector kernel of
// paged_attention.cu with one thread block per (tile, head) instead of per (row, head). A tile is
// up to kMaxTileRows rows of one sequence (a chunk prefill's consecutive positions): each key and
// value a lane group loads is used for every row of the tile, so a prefill of n rows reads its
// context n / kMaxTileRows times instead of n times. Row r sees keys 0..position[r]; each row keeps
// its own online softmax (running maximum and sum, float32, in base 2) per lane group, merged at
// the end as in the vector kernel.
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "engine/cuda/device_utils.cuh"
#include "engine/cuda/paged_attention_tiles.h"

namespace speechllm::engine::cuda {
namespace {

constexpr int kTileWarps = 4;
constexpr int kTileUnroll = 2;

template <typename T, int kLanesPerKey, int kWarps, int kUnroll, int kRows>
__global__ void __launch_bounds__(kWarps* kWarpSize)
    PagedAttentionTileKernel(const PagedAttentionParams p) {
  constexpr int kPerLoad = 16 / sizeof(T);
  constexpr int kKeysPerWarp = kWarpSize / kLanesPerKey;
  constexpr int kKeysPerIteration = kKeysPerWarp * kUnroll;
  constexpr int kHeadDim = kLanesPerKey * kPerLoad;
  constexpr int kStates = kWarps * kKeysPerWarp;  // one softmax state per lane group and row
  const int tile = blockIdx.x;
  const int head = blockIdx.y;
  const int warp = threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  const int group = lane / kLanesPerKey;
  const int piece = lane % kLanesPerKey;
  const int kv_head = head / (p.num_heads / p.num_kv_heads);
  const int first_row = p.tile_first_row[tile];
  // 2..kRows (the host's tiles), the same for the whole block.
  const int rows = min(p.tile_num_rows[tile], kRows);
  const int32_t* table =
      p.block_tables + static_cast<int64_t>(p.row_sequence[first_row]) * p.max_blocks_per_sequence;

  // Scores in base 2 (the scale times log2(e)), so that exp2f replaces expf: the same softmax.
  const float scale_log2 = p.scale * 1.4426950408889634f;
  // Block sizes are powers of two in practice: a shift and a mask instead of a division.
  const bool power_of_two = (p.block_size & (p.block_size - 1)) == 0;
  const int block_shift = __ffs(p.block_size) - 1;
  int position[kRows];
  int context = 0;
  float q[kRows][kPerLoad];
  float acc[kRows][kPerLoad];
  float running_max[kRows];
  float running_sum[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    position[r] = r < rows ? p.row_position[first_row + r] : -1;
    context = max(context, position[r] + 1);
    uint4 query_raw = make_uint4(0, 0, 0, 0);
    if (r < rows) {
      query_raw =
          *reinterpret_cast<const uint4*>(static_cast<const T*>(p.query) +
                                          static_cast<int64_t>(first_row + r) * p.query_row_stride +
                                          static_cast<int64_t>(head) * kHeadDim + piece * kPerLoad);
    }
#pragma unroll
    for (int e = 0; e < kPerLoad; ++e) {
      q[r][e] = Element<T>(query_raw, e) * scale_log2;
      acc[r][e] = 0.0f;
    }
    running_max[r] = -INFINITY;
    running_sum[r] = 0.0f;
  }

  const uint4* keys = static_cast<const uint4*>(p.key_cache);
  const uint4* values = static_cast<const uint4*>(p.value_cache);
  // The trip count is the same for every lane of a warp, and `rows` for the whole block, so the
  // shuffles below always see the whole warp.
  for (int first = warp * kKeysPerIteration; first < context; first += kWarps * kKeysPerIteration) {
    uint4 key[kUnroll];
    uint4 value[kUnroll];
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
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (r >= rows) break;
      float score[kUnroll];
      float step_max = -INFINITY;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        float dot = 0.0f;
#pragma unroll
        for (int e = 0; e < kPerLoad; ++e) dot += q[r][e] * Element<T>(key[u], e);
#pragma unroll
        for (int offset = kLanesPerKey / 2; offset > 0; offset /= 2) {
          dot += __shfl_xor_sync(0xffffffffu, dot, offset);  // stays inside the lane group
        }
        // Causal per row: key j is visible to the row at position[r] when j <= position[r].
        score[u] = first + u * kKeysPerWarp + group <= position[r] ? dot : -INFINITY;
        step_max = fmaxf(step_max, score[u]);
      }
      const float new_max = fmaxf(running_max[r], step_max);
      // Nothing visible yet (new_max still -inf) leaves the state at zero; no inf - inf below.
      const float correction = running_max[r] == -INFINITY ? 0.0f : exp2f(running_max[r] - new_max);
      running_sum[r] *= correction;
#pragma unroll
      for (int e = 0; e < kPerLoad; ++e) acc[r][e] *= correction;
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const float weight = score[u] == -INFINITY ? 0.0f : exp2f(score[u] - new_max);
        running_sum[r] += weight;
#pragma unroll
        for (int e = 0; e < kPerLoad; ++e) acc[r][e] += weight * Element<T>(value[u], e);
      }
      running_max[r] = new_max;
    }
  }

  __shared__ float state_max[kRows][kStates];
  __shared__ float state_sum[kRows][kStates];
  __shared__ float state_acc[kRows][kStates][kHeadDim];
  const int state = warp * kKeysPerWarp + group;
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (piece == 0) {
      state_max[r][state] = running_max[r];
      state_sum[r][state] = running_sum[r];
    }
#pragma unroll
    for (int e = 0; e < kPerLoad; ++e) state_acc[r][state][piece * kPerLoad + e] = acc[r][e];
  }
  __syncthreads();
  for (int index = threadIdx.x; index < rows * kHeadDim; index += kWarps * kWarpSize) {
    const int r = index / kHeadDim;
    const int d = index % kHeadDim;
    float max_all = -INFINITY;
    for (int s = 0; s < kStates; ++s) max_all = fmaxf(max_all, state_max[r][s]);
    float sum_all = 0.0f;
    float out = 0.0f;
    for (int s = 0; s < kStates; ++s) {
      if (state_sum[r][s] == 0.0f) continue;  // a group that saw no key of this row
      const float factor = exp2f(state_max[r][s] - max_all);
      sum_all += state_sum[r][s] * factor;
      out += state_acc[r][s][d] * factor;
    }
    T* output = static_cast<T*>(p.output) +
                (static_cast<int64_t>(first_row + r) * p.num_heads + head) * kHeadDim;
    output[d] = FromFloat<T>(out / sum_all);
  }
}

template <typename T>
void LaunchTyped(const PagedAttentionParams& p, int lanes_per_key) {
  const dim3 grid(static_cast<unsigned>(p.num_tiles), static_cast<unsigned>(p.num_heads));
  const dim3 block(kTileWarps * kWarpSize);
  const auto stream = static_cast<cudaStream_t>(p.stream);
  constexpr int kRows = kMaxTileRows;
  switch (lanes_per_key) {
    case 2:
      PagedAttentionTileKernel<T, 2, kTileWarps, kTileUnroll, kRows><<<grid, block, 0, stream>>>(p);
      break;
    case 4:
      PagedAttentionTileKernel<T, 4, kTileWarps, kTileUnroll, kRows><<<grid, block, 0, stream>>>(p);
      break;
    case 8:
      PagedAttentionTileKernel<T, 8, kTileWarps, kTileUnroll, kRows><<<grid, block, 0, stream>>>(p);
      break;
    case 16:
      PagedAttentionTileKernel<T, 16, kTileWarps, kTileUnroll, kRows>
          <<<grid, block, 0, stream>>>(p);
      break;
    default:
      PagedAttentionTileKernel<T, 32, kTileWarps, kTileUnroll, kRows>
          <<<grid, block, 0, stream>>>(p);
      break;
  }
}

}  // namespace

void LaunchPagedAttentionTiles(const PagedAttentionParams& p, int lanes_per_key) {
  DispatchDtype(p.dtype, [&](auto* type) {
    LaunchTyped<std::remove_pointer_t<decltype(type)>>(p, lanes_per_key);
  });
}

}  // namespace speechllm::engine::cuda
