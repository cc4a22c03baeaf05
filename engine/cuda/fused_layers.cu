// The fused layer kernels of fused_layers.h. Rounding follows libtorch's element-wise kernels:
// float32 "opmath" per operation, the result rounded to the tensor dtype after each operation that
// produces a tensor there; __fmul_rn/__fadd_rn keep nvcc from contracting products and sums into
// FMAs, which would round differently.
#include <cuda_runtime.h>

#include "engine/cuda/device_utils.cuh"
#include "engine/cuda/fused_layers.h"

namespace speechllm::engine::cuda {
namespace {

constexpr int kNormThreads = 256;

// The float value of x rounded to T (a libtorch intermediate tensor of dtype T).
template <typename T>
__device__ __forceinline__ float Round(float x) {
  return ToFloat(FromFloat<T>(x));
}

template <typename T>
__global__ void __launch_bounds__(kNormThreads)
    RmsNormKernel(const T* x, const T* weight, T* out, int32_t hidden, float eps) {
  const T* row = x + static_cast<int64_t>(blockIdx.x) * hidden;
  T* out_row = out + static_cast<int64_t>(blockIdx.x) * hidden;
  float sum = 0.0f;
  for (int i = threadIdx.x; i < hidden; i += kNormThreads) {
    const float v = ToFloat(row[i]);
    sum = __fadd_rn(sum, __fmul_rn(v, v));
  }
  sum = WarpSum(sum);
  __shared__ float warp_sums[kNormThreads / kWarpSize];
  __shared__ float inverse_rms;
  if (threadIdx.x % kWarpSize == 0) warp_sums[threadIdx.x / kWarpSize] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    float total = 0.0f;
    for (int w = 0; w < kNormThreads / kWarpSize; ++w) total = __fadd_rn(total, warp_sums[w]);
    inverse_rms = rsqrtf(__fadd_rn(__fdiv_rn(total, static_cast<float>(hidden)), eps));
  }
  __syncthreads();
  for (int i = threadIdx.x; i < hidden; i += kNormThreads) {
    const float normed = Round<T>(__fmul_rn(ToFloat(row[i]), inverse_rms));
    out_row[i] = FromFloat<T>(__fmul_rn(ToFloat(weight[i]), normed));
  }
}

template <typename T>
__global__ void RotaryKernel(const T* x, const int64_t* positions, const T* cos, const T* sin,
                             T* out, int64_t tokens, int32_t heads, int32_t head_dim) {
  const int32_t half = head_dim / 2;
  const int64_t total = tokens * heads * half;
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; index < total;
       index += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t i = static_cast<int32_t>(index % half);
    const int64_t token_head = index / half;
    const int64_t table = positions[token_head / heads] * head_dim;
    const int64_t base = token_head * head_dim;
    const float first = ToFloat(x[base + i]), second = ToFloat(x[base + i + half]);
    // x * cos + cat(-second_half, first_half) * sin, each product a dtype tensor first.
    out[base + i] = FromFloat<T>(__fadd_rn(Round<T>(__fmul_rn(first, ToFloat(cos[table + i]))),
                                           Round<T>(__fmul_rn(-second, ToFloat(sin[table + i])))));
    out[base + i + half] =
        FromFloat<T>(__fadd_rn(Round<T>(__fmul_rn(second, ToFloat(cos[table + i + half]))),
                               Round<T>(__fmul_rn(first, ToFloat(sin[table + i + half])))));
  }
}

template <typename T>
__global__ void SwiGluKernel(const T* gate, const T* up, T* out, int64_t count) {
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; index < count;
       index += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float g = ToFloat(gate[index]);
    const float silu = Round<T>(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))));
    out[index] = FromFloat<T>(__fmul_rn(silu, ToFloat(up[index])));
  }
}

// Grid for an element-wise loop over `count` items, 256 threads a block.
dim3 ElementwiseGrid(int64_t count) {
  const int64_t blocks = (count + 255) / 256;
  return dim3(static_cast<unsigned>(blocks < 65536 ? (blocks > 0 ? blocks : 1) : 65536));
}

const char* Finish() {
  const cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

}  // namespace

const char* LaunchRmsNorm(const void* x, const void* weight, void* out, int64_t rows,
                          int32_t hidden, float eps, AttentionDtype dtype, void* stream) {
  if (rows < 0 || rows > 0x7fffffff || hidden <= 0) return "rms norm: bad shape";
  if (rows == 0) return nullptr;
  if (x == nullptr || weight == nullptr || out == nullptr) return "rms norm: a null pointer";
  const auto s = static_cast<cudaStream_t>(stream);
  const dim3 grid(static_cast<unsigned>(rows));
  switch (dtype) {
    case AttentionDtype::kFloat32:
      RmsNormKernel<float><<<grid, kNormThreads, 0, s>>>(static_cast<const float*>(x),
                                                         static_cast<const float*>(weight),
                                                         static_cast<float*>(out), hidden, eps);
      break;
    case AttentionDtype::kBFloat16:
      RmsNormKernel<__nv_bfloat16><<<grid, kNormThreads, 0, s>>>(
          static_cast<const __nv_bfloat16*>(x), static_cast<const __nv_bfloat16*>(weight),
          static_cast<__nv_bfloat16*>(out), hidden, eps);
      break;
    case AttentionDtype::kFloat16:
      RmsNormKernel<__half><<<grid, kNormThreads, 0, s>>>(static_cast<const __half*>(x),
                                                          static_cast<const __half*>(weight),
                                                          static_cast<__half*>(out), hidden, eps);
      break;
    default:
      return "rms norm: unknown dtype";
  }
  return Finish();
}

const char* LaunchRotary(const void* x, const int64_t* positions, const void* cos, const void* sin,
                         void* out, int64_t tokens, int32_t heads, int32_t head_dim,
                         AttentionDtype dtype, void* stream) {
  if (tokens < 0 || heads <= 0 || head_dim <= 0 || head_dim % 2 != 0) return "rotary: bad shape";
  if (tokens == 0) return nullptr;
  if (x == nullptr || positions == nullptr || cos == nullptr || sin == nullptr || out == nullptr)
    return "rotary: a null pointer";
  const auto s = static_cast<cudaStream_t>(stream);
  const dim3 grid = ElementwiseGrid(tokens * heads * (head_dim / 2));
  switch (dtype) {
    case AttentionDtype::kFloat32:
      RotaryKernel<float><<<grid, 256, 0, s>>>(
          static_cast<const float*>(x), positions, static_cast<const float*>(cos),
          static_cast<const float*>(sin), static_cast<float*>(out), tokens, heads, head_dim);
      break;
    case AttentionDtype::kBFloat16:
      RotaryKernel<__nv_bfloat16><<<grid, 256, 0, s>>>(
          static_cast<const __nv_bfloat16*>(x), positions, static_cast<const __nv_bfloat16*>(cos),
          static_cast<const __nv_bfloat16*>(sin), static_cast<__nv_bfloat16*>(out), tokens, heads,
          head_dim);
      break;
    case AttentionDtype::kFloat16:
      RotaryKernel<__half><<<grid, 256, 0, s>>>(
          static_cast<const __half*>(x), positions, static_cast<const __half*>(cos),
          static_cast<const __half*>(sin), static_cast<__half*>(out), tokens, heads, head_dim);
      break;
    default:
      return "rotary: unknown dtype";
  }
  return Finish();
}

const char* LaunchSwiGlu(const void* gate, const void* up, void* out, int64_t count,
                         AttentionDtype dtype, void* stream) {
  if (count < 0) return "swiglu: bad count";
  if (count == 0) return nullptr;
  if (gate == nullptr || up == nullptr || out == nullptr) return "swiglu: a null pointer";
  const auto s = static_cast<cudaStream_t>(stream);
  const dim3 grid = ElementwiseGrid(count);
  switch (dtype) {
    case AttentionDtype::kFloat32:
      SwiGluKernel<float><<<grid, 256, 0, s>>>(static_cast<const float*>(gate),
                                               static_cast<const float*>(up),
                                               static_cast<float*>(out), count);
      break;
    case AttentionDtype::kBFloat16:
      SwiGluKernel<__nv_bfloat16><<<grid, 256, 0, s>>>(static_cast<const __nv_bfloat16*>(gate),
                                                       static_cast<const __nv_bfloat16*>(up),
                                                       static_cast<__nv_bfloat16*>(out), count);
      break;
    case AttentionDtype::kFloat16:
      SwiGluKernel<__half><<<grid, 256, 0, s>>>(static_cast<const __half*>(gate),
                                                static_cast<const __half*>(up),
                                                static_cast<__half*>(out), count);
      break;
    default:
      return "swiglu: unknown dtype";
  }
  return Finish();
}

}  // namespace speechllm::engine::cuda
