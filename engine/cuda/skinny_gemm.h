// Small-batch ("skinny") GEMM for CUDA: out = x W^T (+ bias) for 1 to kSkinnyMaxRows input rows,
// the decoder's projections at decode batch sizes. Such a product reads every weight once for a
// few multiply-adds, so its time is the weight bytes over the memory bandwidth; the kernel streams
// the weight rows in 16-byte pieces, several per lane in flight. Float32 sums; one rounding to the
// output dtype. Torch- and CUDA-header-free; called on the model thread.
#ifndef SPEECHLLM_ENGINE_CUDA_SKINNY_GEMM_H_
#define SPEECHLLM_ENGINE_CUDA_SKINNY_GEMM_H_

#include <cstdint>

#include "engine/cuda/paged_attention.h"

namespace speechllm::engine::cuda {

inline constexpr int kSkinnyMaxRows = 8;

// All pointers are device memory in one dtype.
struct SkinnyGemmParams {
  const void* x = nullptr;  // [rows, in_features], rows x_row_stride elements apart
  int64_t x_row_stride = 0;
  const void* weight = nullptr;  // [out_features, in_features], contiguous
  const void* bias = nullptr;    // [out_features], or null
  void* out = nullptr;           // [rows, out_features], contiguous
  int32_t rows = 0;
  int32_t out_features = 0;
  int32_t in_features = 0;
  AttentionDtype dtype = AttentionDtype::kFloat32;
  void* stream = nullptr;  // cudaStream_t; null = the legacy default stream
};

// Whether the kernel takes this layout: 1 to kSkinnyMaxRows rows, in_features a whole number of
// 16-byte pieces, x's rows and the weight 16-byte aligned (`out` is not looked at). Anything else
// stays with cuBLAS.
bool SkinnyGemmFits(const SkinnyGemmParams& p);

// Enqueues the product; an error message (a layout that does not fit, a launch failure) or null.
const char* LaunchSkinnyGemm(const SkinnyGemmParams& p);

}  // namespace speechllm::engine::cuda

#endif  // SPEECHLLM_ENGINE_CUDA_SKINNY_GEMM_H_
