// Helpers shared by the kernels of engine/cuda: conversions between the storage dtypes (float32,
// bfloat16, float16) and the float32 they compute in, a warp-wide sum (device code, called from the
// kernels), and the dtype dispatch of the host launch functions. Header-only; model thread.
#ifndef SPEECHLLM_ENGINE_CUDA_DEVICE_UTILS_CUH_
#define SPEECHLLM_ENGINE_CUDA_DEVICE_UTILS_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "engine/cuda/paged_attention.h"

namespace speechllm::engine::cuda {

__device__ __forceinline__ float ToFloat(float x) { return x; }
__device__ __forceinline__ float ToFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float ToFloat(__half x) { return __half2float(x); }

template <typename T>
__device__ __forceinline__ T FromFloat(float x);
template <>
__device__ __forceinline__ float FromFloat<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __nv_bfloat16 FromFloat<__nv_bfloat16>(float x) {
  return __float2bfloat16(x);  // round to nearest even, as torch's casts
}
template <>
__device__ __forceinline__ __half FromFloat<__half>(float x) {
  return __float2half(x);
}

inline constexpr int kWarpSize = 32;

// The sum of `value` over the 32 lanes of a warp, in every lane.
__device__ __forceinline__ float WarpSum(float value) {
#pragma unroll
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    value += __shfl_xor_sync(0xffffffffu, value, offset);
  }
  return value;
}

// Calls `launch` with a null pointer of the storage type of `dtype` (float, __nv_bfloat16 or
// __half), from which a generic lambda takes its element type. False for an unknown dtype.
template <typename Launch>
bool DispatchDtype(AttentionDtype dtype, Launch&& launch) {
  switch (dtype) {
    case AttentionDtype::kFloat32:
      launch(static_cast<float*>(nullptr));
      return true;
    case AttentionDtype::kBFloat16:
      launch(static_cast<__nv_bfloat16*>(nullptr));
      return true;
    case AttentionDtype::kFloat16:
      launch(static_cast<__half*>(nullptr));
      return true;
  }
  return false;
}

}  // namespace speechllm::engine::cuda

#endif  // SPEECHLLM_ENGINE_CUDA_DEVICE_UTILS_CUH_
