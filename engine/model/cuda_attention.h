// CudaPagedAttention: the decoder's attention on a CUDA device as one launch of the project's
// PagedAttention kernel (engine/cuda) per layer, for the rows DecoderBatch::Prepare assigned to it,
// reading the KvPool's per-layer tensors in place. Only builds with SPEECHLLM_CUDA_KERNELS have the
// kernel; elsewhere PagedAttentionKernelEnabled() is false. Called on the thread that runs the
// model.
#ifndef SPEECHLLM_ENGINE_MODEL_CUDA_ATTENTION_H_
#define SPEECHLLM_ENGINE_MODEL_CUDA_ATTENTION_H_

#include <ATen/ATen.h>

#include <cstdint>

#include "engine/model/decoder_batch.h"

namespace speechllm::engine {

// True when the kernel is compiled in, `device` is CUDA and the environment does not switch it off
// (SPEECHLLM_PAGED_ATTENTION=0 keeps the dense libtorch attention, for comparisons).
bool PagedAttentionKernelEnabled(at::Device device);

// Attention of `query` [batch.kernel_num_rows, num_heads, head_dim] (the kernel rows, in order)
// over the pool tensors [slots, num_kv_heads, head_dim] of one layer: [kernel rows, num_heads *
// head_dim] in the query's dtype.
at::Tensor CudaPagedAttention(const at::Tensor& query, const at::Tensor& key_cache,
                              const at::Tensor& value_cache, const DecoderBatch& batch,
                              int64_t block_size);

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_CUDA_ATTENTION_H_
