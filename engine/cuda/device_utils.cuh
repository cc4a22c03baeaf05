// Helpers shared by the kernels of engine/cuda: conversions between the storage dtypes (float32,
// bfloat16, float16) and the float32 they compute in (also of elements of a 16-byte load), a
// warp-wide sum (device code, called from the kernels), and the dtype dispatch of the host launch
// functions. Header-only; model thread.
#ifndef SPEECHLLM_ENGINE_CUDA_DEVICE_UTILS_CUH_
#define SPEECHLLM_ENGINE_CUDA_DEVICE_UTILS_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

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

// Element e of the 16-byte piece `raw` as float32 (e and the word index fold at compile time).
__device__ __forceinline__ uint32_t Word(const uint4& raw, int i) {
  return i == 0 ? raw.x : i == 1 ? raw.y : i == 2 ? raw.z : raw.w;
}
template <typename T>
__device__ __forceinline__ float Element(const uint4& raw, int e);
template <>
__device__ __forceinline__ float Element<float>(const uint4& raw, int e) {
  return __uint_as_float(Word(raw, e));
}
template <>
__device__ __forceinline__ float Element<__nv_bfloat16>(const uint4& raw, int e) {
  const uint32_t word = Word(raw, e / 2);  // little-endian: element 0 is the low half
  return __uint_as_float(e % 2 ? (word & 0xffff0000u) : (word << 16));
}
template <>
__device__ __forceinline__ float Element<__half>(const uint4& raw, int e) {
  const uint32_t word = Word(raw, e / 2);
  return __half2float(__ushort_as_half(static_cast<unsigned short>(e % 2 ? word >> 16 : word)));
}

inline constexpr int kWarpSize = 32;
// log2(e): scores scaled by it make exp2f compute the softmax's expf.
inline constexpr float kLog2E = 1.4426950408889634f;

// Host side: whether a device pointer suits 16-byte vector loads.
inline bool Aligned16(const void* pointer) {
  return reinterpret_cast<uintptr_t>(pointer) % 16 == 0;
}

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
