// The skinny GEMM of skinny_gemm.h. Each warp owns kOut consecutive output features (weight rows):
// lane l reads their 16-byte pieces l, l + 32, ... (kUnroll pieces of each row before it computes,
// so a lane has kUnroll * kOut independent weight loads in flight: 16 for one or two input rows,
// 8 for more, whose sums take the registers), multiplies each with the same
// piece of every input row (loaded through the read-only cache: all warps share x), and the warp
// sums its lanes at the end. Weight loads bypass L1 (__ldcs: each byte is read once). Blocks of
// kWarps warps; a 4096-feature product is 256 to 512 blocks, the 7B lm_head about 10,000.
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "engine/cuda/device_utils.cuh"
#include "engine/cuda/skinny_gemm.h"

namespace speechllm::engine::cuda {
namespace {

constexpr int kWarps = 4;

// acc + the dot product of two 16-byte pieces of T (4 float32 or 8 16-bit values), element by
// element (Element<T> unpacks 16-bit values exactly).
template <typename T>
__device__ __forceinline__ float DotPiece(const uint4& a, const uint4& b, float acc) {
#pragma unroll
  for (int e = 0; e < 16 / static_cast<int>(sizeof(T)); ++e) {
    acc = fmaf(Element<T>(a, e), Element<T>(b, e), acc);
  }
  return acc;
}

// kRows: the most input rows of this instance (p.rows <= kRows; rows past p.rows are skipped).
template <typename T, int kRows, int kOut, int kUnroll>
__global__ void __launch_bounds__(kWarps* kWarpSize) SkinnyGemmKernel(const SkinnyGemmParams p) {
  constexpr int kPieceElements = 16 / sizeof(T);
  const int warp = threadIdx.x / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  const int first_out = (blockIdx.x * kWarps + warp) * kOut;
  if (first_out >= p.out_features) return;  // no block-wide synchronisation below
  const int pieces = p.in_features / kPieceElements;

  // Features past the end read the last row again (valid memory) and are never written.
  const uint4* weight_rows[kOut];
#pragma unroll
  for (int o = 0; o < kOut; ++o) {
    const int feature = min(first_out + o, p.out_features - 1);
    weight_rows[o] = static_cast<const uint4*>(p.weight) + static_cast<int64_t>(feature) * pieces;
  }
  const uint4* x_rows[kRows];
#pragma unroll
  for (int m = 0; m < kRows; ++m) {
    x_rows[m] = reinterpret_cast<const uint4*>(
        static_cast<const T*>(p.x) + static_cast<int64_t>(min(m, p.rows - 1)) * p.x_row_stride);
  }
  float acc[kOut][kRows];
#pragma unroll
  for (int o = 0; o < kOut; ++o) {
#pragma unroll
    for (int m = 0; m < kRows; ++m) acc[o][m] = 0.0f;
  }

  for (int base = lane; base < pieces; base += kWarpSize * kUnroll) {
    uint4 w[kUnroll][kOut];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int piece = base + u * kWarpSize;
#pragma unroll
      for (int o = 0; o < kOut; ++o) {
        w[u][o] = piece < pieces ? __ldcs(weight_rows[o] + piece) : make_uint4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int piece = base + u * kWarpSize;
      if (piece >= pieces) break;
#pragma unroll
      for (int m = 0; m < kRows; ++m) {
        if (m >= p.rows) break;
        const uint4 x = __ldg(x_rows[m] + piece);
#pragma unroll
        for (int o = 0; o < kOut; ++o) acc[o][m] = DotPiece<T>(w[u][o], x, acc[o][m]);
      }
    }
  }

  // Every lane ends with every sum; lane o * kRows + m stores (row m, feature first_out + o).
  T* out = static_cast<T*>(p.out);
  const T* bias = static_cast<const T*>(p.bias);
#pragma unroll
  for (int o = 0; o < kOut; ++o) {
#pragma unroll
    for (int m = 0; m < kRows; ++m) {
      float sum = WarpSum(acc[o][m]);
      const int feature = first_out + o;
      if (lane == (o * kRows + m) % kWarpSize && m < p.rows && feature < p.out_features) {
        if (bias != nullptr) sum += ToFloat(bias[feature]);
        out[static_cast<int64_t>(m) * p.out_features + feature] = FromFloat<T>(sum);
      }
    }
  }
}

template <typename T, int kRows, int kOut, int kUnroll>
void LaunchRows(const SkinnyGemmParams& p) {
  constexpr int features_per_block = kWarps * kOut;
  const unsigned blocks =
      static_cast<unsigned>((p.out_features + features_per_block - 1) / features_per_block);
  SkinnyGemmKernel<T, kRows, kOut, kUnroll>
      <<<blocks, kWarps * kWarpSize, 0, static_cast<cudaStream_t>(p.stream)>>>(p);
}

// Fewer rows keep more output features per warp (more weight loads in flight for the same
// registers); three to eight rows keep two, with four pieces of each in flight.
template <typename T>
void LaunchTyped(const SkinnyGemmParams& p) {
  if (p.rows == 1) {
    LaunchRows<T, 1, 4, 4>(p);
  } else if (p.rows == 2) {
    LaunchRows<T, 2, 4, 4>(p);
  } else if (p.rows <= 4) {
    LaunchRows<T, 4, 2, 4>(p);
  } else {
    LaunchRows<T, kSkinnyMaxRows, 2, 4>(p);
  }
}

int64_t ElementBytes(AttentionDtype dtype) { return dtype == AttentionDtype::kFloat32 ? 4 : 2; }

}  // namespace

bool SkinnyGemmFits(const SkinnyGemmParams& p) {
  const int64_t element_bytes = ElementBytes(p.dtype);
  const int64_t piece_elements = 16 / element_bytes;
  return p.rows >= 1 && p.rows <= kSkinnyMaxRows && p.out_features > 0 && p.in_features > 0 &&
         p.in_features % piece_elements == 0 && p.x_row_stride >= p.in_features &&
         p.x_row_stride % piece_elements == 0 && Aligned16(p.x) && Aligned16(p.weight);
}

const char* LaunchSkinnyGemm(const SkinnyGemmParams& p) {
  if (!SkinnyGemmFits(p)) {
    return "skinny gemm: layout does not fit (1 to 8 rows, in_features and x's row stride whole "
           "16-byte pieces, 16-byte aligned x and weight)";
  }
  if (p.out == nullptr) return "skinny gemm: a null output";
  const bool known = DispatchDtype(
      p.dtype, [&](auto* type) { LaunchTyped<std::remove_pointer_t<decltype(type)>>(p); });
  if (!known) return "skinny gemm: unknown dtype";
  const cudaError_t error = cudaGetLastError();
  return error == cudaSuccess ? nullptr : cudaGetErrorString(error);
}

}  // namespace speechllm::engine::cuda
