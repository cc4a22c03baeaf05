// The tensor-core PagedAttention kernel for tiles of a prefill's rows (paged_attention_mma.cu),
// launched by LaunchPagedAttention when the caller's tiles hold more than kMaxTileRows rows.
// Internal to engine/cuda; CUDA-header free. Model thread.
#ifndef SPEECHLLM_ENGINE_CUDA_PAGED_ATTENTION_MMA_H_
#define SPEECHLLM_ENGINE_CUDA_PAGED_ATTENTION_MMA_H_

#include "engine/cuda/paged_attention.h"

namespace speechllm::engine::cuda {

// (TensorCoreTilesRun, declared in paged_attention.h, is defined with the kernel: 16-bit types,
// head_dim 16, 32, 64 or 128, compute capability 8.0 or later, read once per device.)

// Enqueues the tensor-core kernel over p's tiles (validated params, TensorCoreTilesRun true,
// 16-byte aligned rows); the single rows are the caller's. The launch error is left for
// cudaGetLastError.
void LaunchPagedAttentionTensorCoreTiles(const PagedAttentionParams& p);

}  // namespace speechllm::engine::cuda

#endif  // SPEECHLLM_ENGINE_CUDA_PAGED_ATTENTION_MMA_H_
