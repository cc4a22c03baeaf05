// The PagedAttention kernel (paged_attention.h): one thread block per (query row, query head).
// Lane l of each warp holds head dimensions l, l + 32, ...; every warp runs an online softmax
// (running maximum and sum, float32) over its share of the visible keys (key j goes to warp
// j % kWarps), reading each key and value row straight from its pool slot; warp 0 merges the warps'
// partial results. Reading the KV pool once per row and head is what a decode step needs; long
// prefills stay with the dense attention (decoder.cc picks). Each warp's keys form one dependent
// chain of loads, so a small grid (batch 1 of the 7B model: 32 blocks on 132 SMs) gets 16 warps per
// block, four times the loads in flight; a large grid has enough blocks to hide latency with 4.
#include <cuda_runtime.h>

#include <cmath>
#include <type_traits>

#include "engine/cuda/device_utils.cuh"
#include "engine/cuda/paged_attention.h"

namespace speechllm::engine::cuda {
namespace {

// Grids of fewer blocks than this take the 16-warp kernel.
constexpr int64_t kSmallGridBlocks = 512;

template <typename T, int kPerLane, int kWarps>
__global__ void __launch_bounds__(kWarps* kWarpSize)
    PagedAttentionKernel(const PagedAttentionParams p) {
  const int row = blockIdx.x;
  const int head = blockIdx.y;
  const int warp = threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  const int kv_head = head / (p.num_heads / p.num_kv_heads);
  const int context = p.row_position[row] + 1;
  const int32_t* table =
      p.block_tables + static_cast<int64_t>(p.row_sequence[row]) * p.max_blocks_per_sequence;

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

template <typename T>
cudaError_t LaunchTyped(const PagedAttentionParams& p) {
  cudaStream_t stream = static_cast<cudaStream_t>(p.stream);
  if (static_cast<int64_t>(p.num_rows) * p.num_heads < kSmallGridBlocks) {
    LaunchWarps<T, 16>(p, stream);
  } else {
    LaunchWarps<T, 4>(p, stream);
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
