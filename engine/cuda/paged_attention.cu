// The PagedAttention kernels (paged_attention.h): one thread block per (query row, query head),
// each reading every visible key and value row of its sequence straight from its pool slot
// through the block table, with an online softmax (running maximum and sum, float32); the block
// merges its partial results at the end. Reading the KV pool once per row and head is what a
// decode step needs; long prefills stay with the dense attention (decoder.cc picks).
//  - The vector kernel (rows of 2 to 32 16-byte pieces, aligned: every layout the models use): a
//    group of lanes holds one key row, 16 bytes a lane, so one load brings a warp 32 / lanes
//    keys, and each warp issues kUnroll such loads of keys and values before it computes. Many
//    independent loads in flight is what a memory-bound decode needs; the first H200 run's scalar
//    kernel had one dependent chain per warp and took ~4 ms of a 7.6 ms batch-1 step (7B model).
//  - The scalar kernel (any other head_dim or alignment): lane l of each warp holds dimensions
//    l, l + 32, ...; key j goes to warp j % kWarps.
// A small grid (batch 1 of the 7B model: 32 blocks on 132 SMs) gets 16 warps per block, a large
// one has enough blocks to hide latency with 4. Rows given in tiles (several rows of a sequence's
// prefill) take the vector kernel's tiled form, one block per tile and head
// (paged_attention_tiles.cu), or with tiles of a whole chunk the tensor-core kernel
// (paged_attention_mma.cu).
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#include "engine/cuda/device_utils.cuh"
#include "engine/cuda/paged_attention.h"
#include "engine/cuda/paged_attention_mma.h"
#include "engine/cuda/paged_attention_steps.cuh"
#include "engine/cuda/paged_attention_tiles.h"

namespace speechllm::engine::cuda {
namespace {

template <typename T, int kPerLane, int kWarps>
__global__ void __launch_bounds__(kWarps* kWarpSize)
    PagedAttentionKernel(const PagedAttentionParams p) {
  const int row = blockIdx.x;
  const int head = blockIdx.y;
  const int warp = threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  const int kv_head = KvHeadOf(p, head);
  const int context = p.row_position[row] + 1;
  const int32_t* table = BlockTableOf(p, row);

  const T* query = static_cast<const T*>(p.query) + static_cast<int64_t>(row) * p.query_row_stride +
                   static_cast<int64_t>(head) * p.head_dim;
  float q[kPerLane];
  float acc[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int d = lane + kWarpSize * i;
    q[i] = d < p.head_dim ? ToFloat(query[d]) : 0.0f;
    acc[i] = 0.0f;
  }
  const T* keys = static_cast<const T*>(p.key_cache);
  const T* values = static_cast<const T*>(p.value_cache);
  float running_max = -INFINITY;
  float running_sum = 0.0f;
  for (int j = warp; j < context; j += kWarps) {
    const int64_t slot =
        static_cast<int64_t>(table[j / p.block_size]) * p.block_size + j % p.block_size;
    const int64_t base = (slot * p.num_kv_heads + kv_head) * p.head_dim;
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int d = lane + kWarpSize * i;
      if (d < p.head_dim) dot += q[i] * ToFloat(keys[base + d]);
    }
    const float score = WarpSum(dot) * p.scale;
    const float new_max = fmaxf(running_max, score);
    const float correction = expf(running_max - new_max);  // 0 before the first key
    const float weight = expf(score - new_max);
    running_sum = running_sum * correction + weight;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int d = lane + kWarpSize * i;
      const float value = d < p.head_dim ? ToFloat(values[base + d]) : 0.0f;
      acc[i] = acc[i] * correction + weight * value;
    }
    running_max = new_max;
  }

  __shared__ float warp_max[kWarps];
  __shared__ float warp_sum[kWarps];
  __shared__ float warp_acc[kWarps][kPerLane * kWarpSize];
  if (lane == 0) {
    warp_max[warp] = running_max;
    warp_sum[warp] = running_sum;
  }
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) warp_acc[warp][lane + kWarpSize * i] = acc[i];
  __syncthreads();
  if (warp != 0) return;
  float max_all = -INFINITY;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) max_all = fmaxf(max_all, warp_max[w]);
  float sum_all = 0.0f;
  float out[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) out[i] = 0.0f;
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    if (warp_sum[w] == 0.0f) continue;  // a warp that had no key (context < kWarps)
    const float factor = expf(warp_max[w] - max_all);
    sum_all += warp_sum[w] * factor;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) out[i] += warp_acc[w][lane + kWarpSize * i] * factor;
  }
  const float inverse = 1.0f / sum_all;
  T* output =
      static_cast<T*>(p.output) + (static_cast<int64_t>(row) * p.num_heads + head) * p.head_dim;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int d = lane + kWarpSize * i;
    if (d < p.head_dim) output[d] = FromFloat<T>(out[i] * inverse);
  }
}

template <typename T, int kLanesPerKey, int kWarps, int kUnroll>
__global__ void __launch_bounds__(kWarps* kWarpSize)
    PagedAttentionVectorKernel(const PagedAttentionParams p) {
  constexpr int kPerLoad = 16 / sizeof(T);  // elements in a lane's 16 bytes
  constexpr int kKeysPerWarp = kWarpSize / kLanesPerKey;
  constexpr int kKeysPerIteration = kKeysPerWarp * kUnroll;  // keys a warp reads per iteration
  constexpr int kHeadDim = kLanesPerKey * kPerLoad;
  constexpr int kStates = kWarps * kKeysPerWarp;  // one softmax state per lane group
  const int row = p.row_subset != nullptr ? p.row_subset[blockIdx.x] : blockIdx.x;
  const int head = blockIdx.y;
  const int warp = threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  const int group = lane / kLanesPerKey;
  const int piece = lane % kLanesPerKey;
  const int kv_head = KvHeadOf(p, head);
  const int context = p.row_position[row] + 1;
  const int32_t* table = BlockTableOf(p, row);

  const uint4 query_raw = *reinterpret_cast<const uint4*>(
      static_cast<const T*>(p.query) + static_cast<int64_t>(row) * p.query_row_stride +
      static_cast<int64_t>(head) * kHeadDim + piece * kPerLoad);
  float q[kPerLoad];
  float acc[kPerLoad];
#pragma unroll
  for (int e = 0; e < kPerLoad; ++e) {
    q[e] = Element<T>(query_raw, e) * p.scale;
    acc[e] = 0.0f;
  }
  float running_max = -INFINITY;
  float running_sum = 0.0f;
  // The trip count is the same for every lane of a warp, so the shuffles see the whole warp.
  for (int first = warp * kKeysPerIteration; first < context; first += kWarps * kKeysPerIteration) {
    uint4 key[kUnroll];
    uint4 value[kUnroll];
    LoadKeysAndValues<kLanesPerKey, kKeysPerWarp>(p, table, kv_head, first, group, piece, context,
                                                  key, value);
    float score[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const float dot = LaneGroupDot<T, kLanesPerKey>(q, key[u]);
      score[u] = first + u * kKeysPerWarp + group < context ? dot : -INFINITY;
    }
    SoftmaxUpdate<T, kPerLoad, kUnroll, /*kBase2=*/false>(score, value, &running_max, &running_sum,
                                                          acc);
  }

  __shared__ float state_max[kStates];
  __shared__ float state_sum[kStates];
  __shared__ float state_acc[kStates][kHeadDim];
  const int state = warp * kKeysPerWarp + group;
  if (piece == 0) {
    state_max[state] = running_max;
    state_sum[state] = running_sum;
  }
#pragma unroll
  for (int e = 0; e < kPerLoad; ++e) state_acc[state][piece * kPerLoad + e] = acc[e];
  __syncthreads();
  float max_all = -INFINITY;
  for (int s = 0; s < kStates; ++s) max_all = fmaxf(max_all, state_max[s]);
  T* output =
      static_cast<T*>(p.output) + (static_cast<int64_t>(row) * p.num_heads + head) * kHeadDim;
  for (int d = threadIdx.x; d < kHeadDim; d += kWarps * kWarpSize) {
    float sum_all = 0.0f;
    float out = 0.0f;
    for (int s = 0; s < kStates; ++s) {
      if (state_sum[s] == 0.0f) continue;  // a group that saw no key
      const float factor = expf(state_max[s] - max_all);
      sum_all += state_sum[s] * factor;
      out += state_acc[s][d] * factor;
    }
    output[d] = FromFloat<T>(out / sum_all);
  }
}

template <typename T, int kWarps>
void LaunchWarps(const PagedAttentionParams& p, cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(p.num_rows), static_cast<unsigned>(p.num_heads));
  const dim3 block(kWarps * kWarpSize);
  if (p.head_dim <= 32) {
    PagedAttentionKernel<T, 1, kWarps><<<grid, block, 0, stream>>>(p);
  } else if (p.head_dim <= 64) {
    PagedAttentionKernel<T, 2, kWarps><<<grid, block, 0, stream>>>(p);
  } else if (p.head_dim <= 128) {
    PagedAttentionKernel<T, 4, kWarps><<<grid, block, 0, stream>>>(p);
  } else {
    PagedAttentionKernel<T, 8, kWarps><<<grid, block, 0, stream>>>(p);
  }
}

template <typename T, int kWarps>
void LaunchVectorWarps(const PagedAttentionParams& p, int lanes_per_key, cudaStream_t stream) {
  constexpr int kUnroll = 4;
  const dim3 grid(static_cast<unsigned>(p.num_rows), static_cast<unsigned>(p.num_heads));
  const dim3 block(kWarps * kWarpSize);
  switch (lanes_per_key) {
    case 2:
      PagedAttentionVectorKernel<T, 2, kWarps, kUnroll><<<grid, block, 0, stream>>>(p);
      break;
    case 4:
      PagedAttentionVectorKernel<T, 4, kWarps, kUnroll><<<grid, block, 0, stream>>>(p);
      break;
    case 8:
      PagedAttentionVectorKernel<T, 8, kWarps, kUnroll><<<grid, block, 0, stream>>>(p);
      break;
    case 16:
      PagedAttentionVectorKernel<T, 16, kWarps, kUnroll><<<grid, block, 0, stream>>>(p);
      break;
    default:
      PagedAttentionVectorKernel<T, 32, kWarps, kUnroll><<<grid, block, 0, stream>>>(p);
      break;
  }
}

// The lanes that hold one key row in the vector kernel (16 bytes each), or 0 where it cannot run:
// rows of 2 to 32 pieces (a power of two) and 16-byte aligned query rows and pools.
template <typename T>
int VectorLanesPerKey(const PagedAttentionParams& p) {
  const int64_t row_bytes = static_cast<int64_t>(p.head_dim) * sizeof(T);
  if (row_bytes % 16 != 0) return 0;
  const int64_t lanes = row_bytes / 16;
  if (lanes < 2 || lanes > kWarpSize || (lanes & (lanes - 1)) != 0) return 0;
  if (!Aligned16(p.query) || !Aligned16(p.key_cache) || !Aligned16(p.value_cache) ||
      (p.query_row_stride * static_cast<int64_t>(sizeof(T))) % 16 != 0) {
    return 0;
  }
  return static_cast<int>(lanes);
}

// Grids of fewer than kSmallGridBlocks blocks get 16 warps a block, larger ones 4.
bool SmallGrid(const PagedAttentionParams& p) {
  return static_cast<int64_t>(p.num_rows) * p.num_heads < kSmallGridBlocks;
}

template <typename T>
void LaunchVector(const PagedAttentionParams& p, int lanes_per_key, cudaStream_t stream) {
  SmallGrid(p) ? LaunchVectorWarps<T, 16>(p, lanes_per_key, stream)
               : LaunchVectorWarps<T, 4>(p, lanes_per_key, stream);
}

template <typename T>
cudaError_t LaunchTyped(const PagedAttentionParams& p) {
  cudaStream_t stream = static_cast<cudaStream_t>(p.stream);
  const int lanes_per_key = p.force_scalar_kernel ? 0 : VectorLanesPerKey<T>(p);
  // Tiles run where their kernel can and make a grid of at least kSmallGridBlocks blocks (with
  // fewer, a block per row and 16 warps a block do better): tiles of a whole chunk on tensor
  // cores, shorter ones in the vector kernel's tiled form, and the rows in no tile through the
  // vector kernel, one launch each. Otherwise every row on its own (the per-row kernels ignore the
  // tiles; tall ones would not fit the 4-row tile kernel anyway).
  const bool tall_tiles = p.max_tile_rows > kMaxTileRows;
  const bool tiled = lanes_per_key > 0 && p.num_tiles > 0 &&
                     static_cast<int64_t>(p.num_tiles) * p.num_heads >= kSmallGridBlocks &&
                     (!tall_tiles || TensorCoreTilesRun(p.dtype, p.head_dim));
  if (tiled) {
    tall_tiles ? LaunchPagedAttentionTensorCoreTiles(p)
               : LaunchPagedAttentionTiles(p, lanes_per_key);
    if (p.num_single_rows > 0) {
      PagedAttentionParams singles = p;
      singles.num_rows = p.num_single_rows;
      singles.row_subset = p.single_rows;
      LaunchVector<T>(singles, lanes_per_key, stream);
    }
  } else if (lanes_per_key > 0) {
    LaunchVector<T>(p, lanes_per_key, stream);
  } else {
    SmallGrid(p) ? LaunchWarps<T, 16>(p, stream) : LaunchWarps<T, 4>(p, stream);
  }
  return cudaGetLastError();
}

}  // namespace

const char* LaunchPagedAttention(const PagedAttentionParams& p) {
  if (p.num_rows < 0) return "paged attention: negative num_rows";
  if (p.num_rows == 0) return nullptr;
  if (p.query == nullptr || p.key_cache == nullptr || p.value_cache == nullptr ||
      p.output == nullptr || p.row_sequence == nullptr || p.row_position == nullptr ||
      p.block_tables == nullptr) {
    return "paged attention: a null device pointer";
  }
  if (p.num_heads <= 0 || p.num_heads > 65535 || p.num_kv_heads <= 0 ||
      p.num_heads % p.num_kv_heads != 0) {
    return "paged attention: num_heads must be a positive multiple of num_kv_heads (<= 65535)";
  }
  if (p.head_dim <= 0 || p.head_dim > kMaxHeadDim) {
    return "paged attention: head_dim must be in [1, 256]";
  }
  if (p.block_size <= 0 || p.max_blocks_per_sequence <= 0) {
    return "paged attention: block_size and max_blocks_per_sequence must be positive";
  }
  if (p.query_row_stride < static_cast<int64_t>(p.num_heads) * p.head_dim) {
    return "paged attention: query rows overlap (query_row_stride < num_heads * head_dim)";
  }
  // max_tile_rows picks the tile kernel, which cannot see the device's tile array: without it
  // tiles taller than 4 rows would lose their rows past the 4th.
  if (p.num_tiles < 0 || p.num_single_rows < 0 ||
      (p.num_tiles > 0 &&
       (p.tile_first_row == nullptr || p.tile_num_rows == nullptr || p.max_tile_rows < 2 ||
        2 * static_cast<int64_t>(p.num_tiles) + p.num_single_rows > p.num_rows ||
        (p.num_single_rows > 0 && p.single_rows == nullptr)))) {
    return "paged attention: tiles must come with their arrays and their tallest height "
           "(max_tile_rows), of at least two rows each, and the single rows with theirs";
  }
  if (p.max_tile_rows < 0 || p.max_tile_rows > kMaxTensorCoreTileRows) {
    return "paged attention: max_tile_rows must be in [0, 32]";
  }
  if (p.row_subset != nullptr) return "paged attention: row_subset is the launcher's";
  cudaError_t error = cudaSuccess;
  const bool known = DispatchDtype(
      p.dtype, [&](auto* type) { error = LaunchTyped<std::remove_pointer_t<decltype(type)>>(p); });
  if (!known) return "paged attention: unknown dtype";
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

int CudaDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

}  // namespace speechllm::engine::cuda
