#include "engine/model/cuda_attention.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#if SPEECHLLM_CUDA_KERNELS
#include "engine/cuda/paged_attention.h"
#endif
// The CUDA libtorch knows the current stream and device. Debian's CPU libtorch (which never holds
// CUDA tensors) ships the c10/cuda headers but not their generated configuration header.
#if __has_include(<c10/cuda/impl/cuda_cmake_macros.h>)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#define SPEECHLLM_HAVE_C10_CUDA 1
#endif

namespace speechllm::engine {

bool PagedAttentionKernelEnabled(at::Device device) {
#if SPEECHLLM_CUDA_KERNELS
  static const bool switched_off = [] {
    const char* value = std::getenv("SPEECHLLM_PAGED_ATTENTION");
    return value != nullptr && std::strcmp(value, "0") == 0;
  }();
  return device.is_cuda() && !switched_off;
#else
  return false;
#endif
}

at::Tensor CudaPagedAttention(const at::Tensor& query, const at::Tensor& key_cache,
                              const at::Tensor& value_cache, const DecoderBatch& batch,
                              int64_t block_size) {
#if SPEECHLLM_CUDA_KERNELS
  TORCH_CHECK(query.dim() == 3 && key_cache.dim() == 3, "paged attention: bad ranks");
  TORCH_CHECK(query.size(0) == batch.kernel_num_rows, "paged attention: ", query.size(0),
              " query rows, ", batch.kernel_num_rows, " kernel rows");
  TORCH_CHECK(key_cache.is_contiguous() && value_cache.is_contiguous(),
              "paged attention: the KV pool must be contiguous");
  TORCH_CHECK(key_cache.scalar_type() == query.scalar_type(),
              "paged attention: KV pool and query dtypes differ");
  const at::Tensor q =
      query.stride(2) == 1 && query.stride(1) == query.size(2) ? query : query.contiguous();
  const int64_t num_heads = q.size(1), head_dim = q.size(2);
  at::Tensor out = at::empty({q.size(0), num_heads * head_dim}, q.options());
#if SPEECHLLM_HAVE_C10_CUDA
  const c10::cuda::CUDAGuard device_guard(q.device());
#endif
  cuda::PagedAttentionParams p;
  p.query = q.data_ptr();
  p.key_cache = key_cache.data_ptr();
  p.value_cache = value_cache.data_ptr();
  p.output = out.data_ptr();
  p.row_sequence = batch.kernel_row_sequence.data_ptr<int32_t>();
  p.row_position = batch.kernel_row_position.data_ptr<int32_t>();
  p.block_tables = batch.kernel_block_tables.data_ptr<int32_t>();
  p.num_rows = static_cast<int32_t>(q.size(0));
  p.num_heads = static_cast<int32_t>(num_heads);
  p.num_kv_heads = static_cast<int32_t>(key_cache.size(1));
  p.head_dim = static_cast<int32_t>(head_dim);
  p.block_size = static_cast<int32_t>(block_size);
  p.max_blocks_per_sequence = static_cast<int32_t>(batch.kernel_block_tables.size(1));
  p.query_row_stride = q.stride(0);
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  switch (q.scalar_type()) {
    case at::kFloat:
      p.dtype = cuda::AttentionDtype::kFloat32;
      break;
    case at::kBFloat16:
      p.dtype = cuda::AttentionDtype::kBFloat16;
      break;
    case at::kHalf:
      p.dtype = cuda::AttentionDtype::kFloat16;
      break;
    default:
      TORCH_CHECK(false, "paged attention: unsupported dtype ", q.scalar_type());
  }
#if SPEECHLLM_HAVE_C10_CUDA
  p.stream = c10::cuda::getCurrentCUDAStream(q.device().index()).stream();
#endif
  const char* error = cuda::LaunchPagedAttention(p);
  TORCH_CHECK(error == nullptr, error);
  return out;
#else
  TORCH_CHECK(false, "this build has no CUDA kernels (SPEECHLLM_WITH_CUDA=OFF)");
#endif
}

}  // namespace speechllm::engine
