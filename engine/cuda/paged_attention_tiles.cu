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
#include "engine/cuda/paged_attention_steps.cuh"
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
  const int kv_head = KvHeadOf(p, head);
  const int first_row = p.tile_first_row[tile];
  // 2..kRows (the host's tiles), the same for the whole block.
  const int rows = min(p.tile_num_rows[tile], kRows);
  const int32_t* table = BlockTableOf(p, first_row);

  // Scores in base 2 (the scale times log2(e)), so that exp2f replaces expf: the same softmax.
  const float scale_log2 = p.scale * kLog2E;
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

  // The trip count is the same for every lane of a warp, and `rows` for the whole block, so the
  // shuffles below always see the whole warp.
  for (int first = warp * kKeysPerIteration; first < context; first += kWarps * kKeysPerIteration) {
    uint4 key[kUnroll];
    uint4 value[kUnroll];
    LoadKeysAndValues<kLanesPerKey, kKeysPerWarp>(p, table, kv_head, first, group, piece, context,
                                                  key, value);
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      if (r >= rows) break;
      float score[kUnroll];
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const float dot = LaneGroupDot<T, kLanesPerKey>(q[r], key[u]);
        // Causal per row: key j is visible to the row at position[r] when j <= position[r].
        score[u] = first + u * kKeysPerWarp + group <= position[r] ? dot : -INFINITY;
      }
      SoftmaxUpdate<T, kPerLoad, kUnroll, /*kBase2=*/true>(score, value, &running_max[r],
                                                           &running_sum[r], acc[r]);
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
