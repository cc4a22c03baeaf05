// The fused layer kernels of fused_layers.h. Rounding follows libtorch's element-wise kernels:
// float32 "opmath" per operation, the result rounded to the tensor dtype after each operation that
// produces a tensor there; __fmul_rn/__fadd_rn keep nvcc from contracting products and sums into
// FMAs, which would round differently.
#include <cuda_runtime.h>

#include <type_traits>

#include "engine/cuda/device_utils.cuh"
#include "engine/cuda/fused_layers.h"

namespace speechllm::engine::cuda {
namespace {

constexpr int kNormThreads = 256;
constexpr int kElementwiseThreads = 256;

// The float value of x rounded to T (a libtorch intermediate tensor of dtype T).
template <typename T>
__device__ __forceinline__ float Round(float x) {
  return ToFloat(FromFloat<T>(x));
}

// RMSNorm of each row of x; with kAddResidual, of x + residual, which is written to `sum` first
// (rounded to T, as libtorch's x + residual is). Each thread reads back only what it wrote.
template <typename T, bool kAddResidual>
__global__ void __launch_bounds__(kNormThreads)
    RmsNormKernel(const T* x, const T* residual, const T* weight, T* sum_out, T* out,
                  int32_t hidden, float eps) {
  const int64_t offset = static_cast<int64_t>(blockIdx.x) * hidden;
  const T* row = kAddResidual ? sum_out + offset : x + offset;
  T* out_row = out + offset;
  float sum = 0.0f;
  for (int i = threadIdx.x; i < hidden; i += kNormThreads) {
    float v = ToFloat(x[offset + i]);
    if constexpr (kAddResidual) {
      v = Round<T>(__fadd_rn(v, ToFloat(residual[offset + i])));
      sum_out[offset + i] = FromFloat<T>(v);
    }
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

// Element i and i + half of one head after rotary: x * cos + rotate_half(x) * sin, each product a
// dtype tensor first. `x`, `cos_row` and `sin_row` point at the head and its position's table row.
template <typename T>
struct RotatedPair {
  T first, second;
};
template <typename T>
__device__ __forceinline__ RotatedPair<T> Rotate(const T* x, const T* cos_row, const T* sin_row,
                                                 int32_t i, int32_t half) {
  const float first = ToFloat(x[i]), second = ToFloat(x[i + half]);
  // cat(-second_half, first_half) * sin.
  return {FromFloat<T>(__fadd_rn(Round<T>(__fmul_rn(first, ToFloat(cos_row[i]))),
                                 Round<T>(__fmul_rn(-second, ToFloat(sin_row[i]))))),
          FromFloat<T>(__fadd_rn(Round<T>(__fmul_rn(second, ToFloat(cos_row[i + half]))),
                                 Round<T>(__fmul_rn(first, ToFloat(sin_row[i + half])))))};
}

template <typename T>
__global__ void RotaryKernel(const T* x, int64_t x_token_stride, const int64_t* positions,
                             const T* cos, const T* sin, T* out, int64_t tokens, int32_t heads,
                             int32_t head_dim) {
  const int32_t half = head_dim / 2;
  const int64_t total = tokens * heads * half;
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; index < total;
       index += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t i = static_cast<int32_t>(index % half);
    const int64_t token_head = index / half;
    const int64_t token = token_head / heads;
    const int64_t table = positions[token] * head_dim;
    const int64_t base = token_head * head_dim;
    const int64_t in = token * x_token_stride + (token_head - token * heads) * head_dim;
    const RotatedPair<T> pair = Rotate(x + in, cos + table, sin + table, i, half);
    out[base + i] = pair.first;
    out[base + i + half] = pair.second;
  }
}

// One thread per (token, head of q, k or v, pair i): q heads rotated into q_out, k heads rotated
// into their pool row (and k_out), v heads copied into theirs.
template <typename T>
__global__ void RotaryQkvToPoolKernel(const RotaryQkvParams p) {
  const int32_t half = p.head_dim / 2;
  const int32_t all_heads = p.heads + 2 * p.kv_heads;
  const int64_t total = p.tokens * all_heads * half;
  const T* qkv = static_cast<const T*>(p.qkv);
  const T* cos = static_cast<const T*>(p.cos);
  const T* sin = static_cast<const T*>(p.sin);
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; index < total;
       index += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int32_t i = static_cast<int32_t>(index % half);
    const int64_t token_head = index / half;
    const int64_t token = token_head / all_heads;
    const int32_t head = static_cast<int32_t>(token_head - token * all_heads);
    const T* in = qkv + token * p.qkv_row_stride + static_cast<int64_t>(head) * p.head_dim;
    if (head >= p.heads + p.kv_heads) {  // v
      const int64_t row = p.slots[token] * p.kv_heads + (head - p.heads - p.kv_heads);
      T* value = static_cast<T*>(p.value_cache) + row * p.head_dim;
      value[i] = in[i];
      value[i + half] = in[i + half];
      continue;
    }
    const int64_t table = p.positions[token] * p.head_dim;
    const RotatedPair<T> pair = Rotate(in, cos + table, sin + table, i, half);
    T* targets[2] = {nullptr, nullptr};
    if (head < p.heads) {
      targets[0] = static_cast<T*>(p.q_out) + (token * p.heads + head) * p.head_dim;
    } else {
      const int32_t kv_head = head - p.heads;
      targets[0] =
          static_cast<T*>(p.key_cache) + (p.slots[token] * p.kv_heads + kv_head) * p.head_dim;
      if (p.k_out != nullptr) {
        targets[1] = static_cast<T*>(p.k_out) + (token * p.kv_heads + kv_head) * p.head_dim;
      }
    }
    for (T* target : targets) {
      if (target == nullptr) continue;
      target[i] = pair.first;
      target[i + half] = pair.second;
    }
  }
}

template <typename T>
__global__ void SwiGluKernel(const T* gate, const T* up, int64_t in_row_stride, T* out,
                             int64_t rows, int64_t width) {
  const int64_t count = rows * width;
  for (int64_t index = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; index < count;
       index += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t row = index / width;
    const int64_t in = row * in_row_stride + (index - row * width);
    const float g = ToFloat(gate[in]);
    const float silu = Round<T>(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))));
    out[index] = FromFloat<T>(__fmul_rn(silu, ToFloat(up[in])));
  }
}

// Grid for an element-wise loop over `count` items, kElementwiseThreads a block.
dim3 ElementwiseGrid(int64_t count) {
  const int64_t blocks = (count + kElementwiseThreads - 1) / kElementwiseThreads;
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
  const bool known = DispatchDtype(dtype, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    RmsNormKernel<T, false><<<grid, kNormThreads, 0, s>>>(static_cast<const T*>(x), nullptr,
                                                          static_cast<const T*>(weight), nullptr,
                                                          static_cast<T*>(out), hidden, eps);
  });
  return known ? Finish() : "rms norm: unknown dtype";
}

const char* LaunchAddRmsNorm(const void* x, const void* residual, const void* weight, void* sum,
                             void* out, int64_t rows, int32_t hidden, float eps,
                             AttentionDtype dtype, void* stream) {
  if (rows < 0 || rows > 0x7fffffff || hidden <= 0) return "add + rms norm: bad shape";
  if (rows == 0) return nullptr;
  if (x == nullptr || residual == nullptr || weight == nullptr || sum == nullptr ||
      out == nullptr) {
    return "add + rms norm: a null pointer";
  }
  const auto s = static_cast<cudaStream_t>(stream);
  const dim3 grid(static_cast<unsigned>(rows));
  const bool known = DispatchDtype(dtype, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    RmsNormKernel<T, true><<<grid, kNormThreads, 0, s>>>(
        static_cast<const T*>(x), static_cast<const T*>(residual), static_cast<const T*>(weight),
        static_cast<T*>(sum), static_cast<T*>(out), hidden, eps);
  });
  return known ? Finish() : "add + rms norm: unknown dtype";
}

const char* LaunchRotary(const void* x, int64_t x_token_stride, const int64_t* positions,
                         const void* cos, const void* sin, void* out, int64_t tokens, int32_t heads,
                         int32_t head_dim, AttentionDtype dtype, void* stream) {
  if (tokens < 0 || heads <= 0 || head_dim <= 0 || head_dim % 2 != 0) return "rotary: bad shape";
  if (x_token_stride < static_cast<int64_t>(heads) * head_dim) {
    return "rotary: tokens overlap (x_token_stride < heads * head_dim)";
  }
  if (tokens == 0) return nullptr;
  if (x == nullptr || positions == nullptr || cos == nullptr || sin == nullptr || out == nullptr)
    return "rotary: a null pointer";
  const auto s = static_cast<cudaStream_t>(stream);
  const dim3 grid = ElementwiseGrid(tokens * heads * (head_dim / 2));
  const bool known = DispatchDtype(dtype, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    RotaryKernel<T><<<grid, kElementwiseThreads, 0, s>>>(
        static_cast<const T*>(x), x_token_stride, positions, static_cast<const T*>(cos),
        static_cast<const T*>(sin), static_cast<T*>(out), tokens, heads, head_dim);
  });
  return known ? Finish() : "rotary: unknown dtype";
}

const char* LaunchRotaryQkvToPool(const RotaryQkvParams& p) {
  if (p.tokens < 0 || p.heads <= 0 || p.kv_heads <= 0 || p.head_dim <= 0 || p.head_dim % 2 != 0) {
    return "rotary q/k/v to pool: bad shape";
  }
  if (p.qkv_row_stride < static_cast<int64_t>(p.heads + 2 * p.kv_heads) * p.head_dim) {
    return "rotary q/k/v to pool: tokens overlap (qkv_row_stride < (heads + 2 kv_heads) * "
           "head_dim)";
  }
  if (p.tokens == 0) return nullptr;
  if (p.qkv == nullptr || p.positions == nullptr || p.slots == nullptr || p.cos == nullptr ||
      p.sin == nullptr || p.q_out == nullptr || p.key_cache == nullptr ||
      p.value_cache == nullptr) {
    return "rotary q/k/v to pool: a null pointer";
  }
  const auto s = static_cast<cudaStream_t>(p.stream);
  const dim3 grid = ElementwiseGrid(p.tokens * (p.heads + 2 * p.kv_heads) * (p.head_dim / 2));
  const bool known = DispatchDtype(p.dtype, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    RotaryQkvToPoolKernel<T><<<grid, kElementwiseThreads, 0, s>>>(p);
  });
  return known ? Finish() : "rotary q/k/v to pool: unknown dtype";
}

const char* LaunchSwiGlu(const void* gate, const void* up, int64_t in_row_stride, void* out,
                         int64_t rows, int64_t width, AttentionDtype dtype, void* stream) {
  if (rows < 0 || width < 0) return "swiglu: bad shape";
  if (rows == 0 || width == 0) return nullptr;
  if (in_row_stride < width) return "swiglu: rows overlap (in_row_stride < width)";
  if (gate == nullptr || up == nullptr || out == nullptr) return "swiglu: a null pointer";
  const auto s = static_cast<cudaStream_t>(stream);
  const dim3 grid = ElementwiseGrid(rows * width);
  const bool known = DispatchDtype(dtype, [&](auto* type) {
    using T = std::remove_pointer_t<decltype(type)>;
    SwiGluKernel<T><<<grid, kElementwiseThreads, 0, s>>>(static_cast<const T*>(gate),
                                                         static_cast<const T*>(up), in_row_stride,
                                                         static_cast<T*>(out), rows, width);
  });
  return known ? Finish() : "swiglu: unknown dtype";
}

}  // namespace speechllm::engine::cuda
