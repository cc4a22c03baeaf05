// The tiled PagedAttention kernel (paged_attention_tiles.cu), launched by LaunchPagedAttention when
// the rows come in tiles (PagedAttentionParams::num_tiles). Internal to engine/cuda; CUDA-header
// free. Model thread.
#ifndef SPEECHLLM_ENGINE_CUDA_PAGED_ATTENTION_TILES_H_
#define SPEECHLLM_ENGINE_CUDA_PAGED_ATTENTION_TILES_H_

#include "engine/cuda/paged_attention.h"

namespace speechllm::engine::cuda {

// Enqueues the tiled kernel for validated params whose layout takes the vector kernel with
// `lanes_per_key` lanes a key row (2 to 32, a power of two). The launch error is left for
// cudaGetLastError.
void LaunchPagedAttentionTiles(const PagedAttentionParams& p, int lanes_per_key);

}  // namespace speechllm::engine::cuda

#endif  // SPEECHLLM_ENGINE_CUDA_PAGED_ATTENTION_TILES_H_
