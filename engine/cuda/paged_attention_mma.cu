// The tensor-core PagedAttention kernel (paged_attention_mma.h): one thread block of four warps per
// (tile, head), a tile being up to kMaxTensorCoreTileRows consecutive rows of one sequence (a
// chunk prefill). The block reads each key and value of the sequence once for all its rows, and
// the products run on tensor cores (WMMA, 16x16x16, float32 accumulators), where the per-row and
// 4-row tile kernels spend CUDA-core instructions on every (row, key) pair: at 150 streams a step
// holds ~3,300 such rows over ~1,500-token contexts. Two passes over the keys: the first finds
// each row's maximum and sum of exp (float32, base 2), the second adds P V with P already
// normalised, so no accumulator needs rescaling (a WMMA fragment's element layout is opaque).
// P is rounded to the 16-bit type before its product, as flash attention does; Q, K and V are
// already of that type. Row r sees keys 0..position[r].
#include <cuda_runtime.h>
#include <mma.h>

#include <cmath>
#include <cstdint>

#include "engine/cuda/device_utils.cuh"
#include "engine/cuda/paged_attention_mma.h"
#include "engine/cuda/paged_attention_steps.cuh"

namespace speechllm::engine::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * kWarpSize;
constexpr int kRows = kMaxTensorCoreTileRows;  // query rows of a block (the tile, zero-padded)
constexpr int kKeys = 32;                      // keys per iteration
constexpr int kScoreLd = kKeys + 4;            // float rows: a multiple of 4 (WMMA's float ldm)
constexpr int kProbLd = kKeys + 8;             // 16-bit rows: a multiple of 8
static_assert(kRows == 32 && kThreads == 4 * kRows, "four threads per row in the softmax steps");

// One (tile, head): see the file comment. kHeadDim is 16, 32, 64 or 128.
template <typename T, int kHeadDim>
__global__ void __launch_bounds__(kThreads)
    PagedAttentionTensorCoreKernel(const PagedAttentionParams p) {
#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 800  // the host pass parses the body too
  using namespace nvcuda;
  constexpr int kLd = kHeadDim + 8;      // 16-bit rows of Q, K, V: padded against bank conflicts
  constexpr int kPieces = kHeadDim / 8;  // 16-byte pieces of a row
  constexpr int kColBlocks = kHeadDim / 16;
  constexpr int kOutLd = kHeadDim + 4;  // float output rows
  constexpr int kTilesPerWarp = (2 * kColBlocks + kWarps - 1) / kWarps;
  __shared__ __align__(128) T q_s[kRows][kLd];
  // Keys and values during the passes, the float output after them.
  __shared__ __align__(128) unsigned char kv_raw[2 * kKeys * kLd * sizeof(T)];
  static_assert(sizeof(kv_raw) >= kRows * kOutLd * sizeof(float), "output fits the key buffers");
  __shared__ __align__(128) float s_s[kRows][kScoreLd];
  __shared__ __align__(128) T p_s[kRows][kProbLd];
  __shared__ int row_pos[kRows];
  T(*k_s)[kLd] = reinterpret_cast<T(*)[kLd]>(kv_raw);
  T(*v_s)[kLd] = reinterpret_cast<T(*)[kLd]>(kv_raw + kKeys * kLd * sizeof(T));

  const int tile = blockIdx.x;
  const int head = blockIdx.y;
  const int tid = threadIdx.x;
  const int warp = tid / kWarpSize;
  const int kv_head = KvHeadOf(p, head);
  const int first_row = p.tile_first_row[tile];
  const int rows = min(p.tile_num_rows[tile], kRows);
  const int32_t* table = BlockTableOf(p, first_row);
  const float scale_log2 = p.scale * kLog2E;  // scores in base 2, for exp2f

  if (tid < kRows) row_pos[tid] = tid < rows ? p.row_position[first_row + tid] : -1;
  for (int index = tid; index < kRows * kPieces; index += kThreads) {
    const int r = index / kPieces, piece = index % kPieces;
    uint4 raw = make_uint4(0, 0, 0, 0);
    if (r < rows) {
      raw =
          reinterpret_cast<const uint4*>(static_cast<const T*>(p.query) +
                                         static_cast<int64_t>(first_row + r) * p.query_row_stride +
                                         static_cast<int64_t>(head) * kHeadDim)[piece];
    }
    *reinterpret_cast<uint4*>(&q_s[r][piece * 8]) = raw;
  }
  __syncthreads();
  int context = 0;
  for (int r = 0; r < kRows; ++r) context = max(context, row_pos[r] + 1);

  // Keys (and values) first..first + kKeys - 1 into shared memory, zeros past the context.
  const uint4* keys = static_cast<const uint4*>(p.key_cache);
  const uint4* values = static_cast<const uint4*>(p.value_cache);
  const auto load = [&](int first, bool with_values) {
    for (int index = tid; index < kKeys * kPieces; index += kThreads) {
      const int k = index / kPieces, piece = index % kPieces;
      const int j = first + k;
      uint4 key = make_uint4(0, 0, 0, 0), value = make_uint4(0, 0, 0, 0);
      if (j < context) {
        const int64_t slot =
            static_cast<int64_t>(table[j / p.block_size]) * p.block_size + j % p.block_size;
        const int64_t at = (slot * p.num_kv_heads + kv_head) * kPieces + piece;
        key = keys[at];
        if (with_values) value = values[at];
      }
      *reinterpret_cast<uint4*>(&k_s[k][piece * 8]) = key;
      if (with_values) *reinterpret_cast<uint4*>(&v_s[k][piece * 8]) = value;
    }
  };
  // S = Q K^T for the loaded keys into s_s: warp w computes rows 16 (w / 2), keys 16 (w % 2).
  const auto scores = [&] {
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> s;
    wmma::fill_fragment(s, 0.0f);
    const int rb = warp / 2, cb = warp % 2;
#pragma unroll
    for (int kk = 0; kk < kColBlocks; ++kk) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b;
      wmma::load_matrix_sync(a, &q_s[16 * rb][16 * kk], kLd);
      wmma::load_matrix_sync(b, &k_s[16 * cb][16 * kk], kLd);
      wmma::mma_sync(s, a, b, s);
    }
    wmma::store_matrix_sync(&s_s[16 * rb][16 * cb], s, kScoreLd, wmma::mem_row_major);
  };

  // Four threads per row, eight keys each (columns part, part + 4, ...: the four threads of a row
  // and the eight rows of a warp read 32 different banks); their row state is the same in all
  // four.
  const int row = tid / 4, part = tid % 4;
  float row_max = -INFINITY, row_sum = 0.0f;
  for (int first = 0; first < context; first += kKeys) {  // pass 1: maximum and sum
    load(first, /*with_values=*/false);
    __syncthreads();
    scores();
    __syncthreads();
    float block_max = -INFINITY;
#pragma unroll
    for (int c = part; c < kKeys; c += 4) {
      if (first + c <= row_pos[row]) block_max = fmaxf(block_max, s_s[row][c] * scale_log2);
    }
    block_max = fmaxf(block_max, __shfl_xor_sync(0xffffffffu, block_max, 1));
    block_max = fmaxf(block_max, __shfl_xor_sync(0xffffffffu, block_max, 2));
    const float new_max = fmaxf(row_max, block_max);
    float block_sum = 0.0f;
    if (new_max != -INFINITY) {
#pragma unroll
      for (int c = part; c < kKeys; c += 4) {
        if (first + c <= row_pos[row]) block_sum += exp2f(s_s[row][c] * scale_log2 - new_max);
      }
    }
    block_sum += __shfl_xor_sync(0xffffffffu, block_sum, 1);
    block_sum += __shfl_xor_sync(0xffffffffu, block_sum, 2);
    if (new_max != -INFINITY) {
      row_sum = (row_max == -INFINITY ? 0.0f : row_sum * exp2f(row_max - new_max)) + block_sum;
      row_max = new_max;
    }
    __syncthreads();  // s_s and k_s are overwritten next
  }
  const float inverse_sum = row_sum > 0.0f ? 1.0f / row_sum : 0.0f;

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> out[kTilesPerWarp];
#pragma unroll
  for (int i = 0; i < kTilesPerWarp; ++i) wmma::fill_fragment(out[i], 0.0f);
  for (int first = 0; first < context; first += kKeys) {  // pass 2: O += P V
    load(first, /*with_values=*/true);
    __syncthreads();
    scores();
    __syncthreads();
#pragma unroll
    for (int c = part; c < kKeys; c += 4) {
      const bool visible = first + c <= row_pos[row] && row_sum > 0.0f;
      p_s[row][c] =
          FromFloat<T>(visible ? exp2f(s_s[row][c] * scale_log2 - row_max) * inverse_sum : 0.0f);
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kTilesPerWarp; ++i) {
      const int t = warp + kWarps * i;  // output tile: rows 16 (t % 2), dimensions 16 (t / 2)
      const int rb = t % 2, cb = t / 2;
      if (cb >= kColBlocks) continue;
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> b;
        wmma::load_matrix_sync(a, &p_s[16 * rb][16 * kk], kProbLd);
        wmma::load_matrix_sync(b, &v_s[16 * kk][16 * cb], kLd);
        wmma::mma_sync(out[i], a, b, out[i]);
      }
    }
    __syncthreads();  // k_s, v_s and p_s are overwritten next
  }

  float(*o_s)[kOutLd] = reinterpret_cast<float(*)[kOutLd]>(kv_raw);
#pragma unroll
  for (int i = 0; i < kTilesPerWarp; ++i) {
    const int t = warp + kWarps * i;
    const int rb = t % 2, cb = t / 2;
    if (cb < kColBlocks) {
      wmma::store_matrix_sync(&o_s[16 * rb][16 * cb], out[i], kOutLd, wmma::mem_row_major);
    }
  }
  __syncthreads();
  for (int index = tid; index < rows * kHeadDim; index += kThreads) {
    const int r = index / kHeadDim, d = index % kHeadDim;
    T* output = static_cast<T*>(p.output) +
                (static_cast<int64_t>(first_row + r) * p.num_heads + head) * kHeadDim;
    output[d] = FromFloat<T>(o_s[r][d]);
  }
#else
  __trap();  // never launched below compute capability 8.0 (TensorCoreTilesRun)
#endif
}

template <typename T>
void LaunchTyped(const PagedAttentionParams& p) {
  const dim3 grid(static_cast<unsigned>(p.num_tiles), static_cast<unsigned>(p.num_heads));
  const auto stream = static_cast<cudaStream_t>(p.stream);
  switch (p.head_dim) {
    case 16:
      PagedAttentionTensorCoreKernel<T, 16><<<grid, kThreads, 0, stream>>>(p);
      break;
    case 32:
      PagedAttentionTensorCoreKernel<T, 32><<<grid, kThreads, 0, stream>>>(p);
      break;
    case 64:
      PagedAttentionTensorCoreKernel<T, 64><<<grid, kThreads, 0, stream>>>(p);
      break;
    default:
      PagedAttentionTensorCoreKernel<T, 128><<<grid, kThreads, 0, stream>>>(p);
      break;
  }
}

bool DeviceHasTensorCores() {
  constexpr int kMaxDevices = 64;
  static int major[kMaxDevices] = {};  // 0: not read yet (or no device)
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) {
    cudaGetLastError();
    return false;
  }
  if (major[device] == 0 &&
      cudaDeviceGetAttribute(&major[device], cudaDevAttrComputeCapabilityMajor, device) !=
          cudaSuccess) {
    cudaGetLastError();
    major[device] = 0;
    return false;
  }
  return major[device] >= 8;
}

}  // namespace

bool TensorCoreTilesRun(AttentionDtype dtype, int head_dim) {
  return dtype != AttentionDtype::kFloat32 &&
         (head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128) &&
         DeviceHasTensorCores();
}

void LaunchPagedAttentionTensorCoreTiles(const PagedAttentionParams& p) {
  if (p.dtype == AttentionDtype::kBFloat16) {
    LaunchTyped<__nv_bfloat16>(p);
  } else {
    LaunchTyped<__half>(p);
  }
}

}  // namespace speechllm::engine::cuda
