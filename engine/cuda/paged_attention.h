// PagedAttention: one CUDA launch computes causal attention for every new query row of a decoder
// step (decode tokens and prefill pieces of many sequences alike) straight from the paged KV pool
// through each sequence's block table (MODEL.md 4.2: scale 1/sqrt(head_dim), softmax in float32,
// grouped-query heads). Torch-free and CUDA-header-free, so any C++ file may include it; the kernel
// lives in paged_attention.cu. Called on the thread that runs the model.
#ifndef SPEECHLLM_ENGINE_CUDA_PAGED_ATTENTION_H_
#define SPEECHLLM_ENGINE_CUDA_PAGED_ATTENTION_H_

#include <cstdint>

namespace speechllm::engine::cuda {

enum class AttentionDtype : int32_t { kFloat32 = 0, kBFloat16 = 1, kFloat16 = 2 };

// All pointers are device memory; query, keys, values and output share `dtype`.
struct PagedAttentionParams {
  const void* query = nullptr;      // [num_rows, num_heads, head_dim], rows query_row_stride apart
  const void* key_cache = nullptr;  // [num_slots, num_kv_heads, head_dim], contiguous
  const void* value_cache = nullptr;      // same layout; slot = block * block_size + offset
  void* output = nullptr;                 // [num_rows, num_heads, head_dim], contiguous
  const int32_t* row_sequence = nullptr;  // [num_rows]: the row's sequence (block-table row)
  const int32_t* row_position = nullptr;  // [num_rows]: its position; keys 0..position are visible
  const int32_t* block_tables = nullptr;  // [num_sequences, max_blocks_per_sequence]
  int32_t num_rows = 0;
  int32_t num_heads = 0;
  int32_t num_kv_heads = 0;  // divides num_heads
  int32_t head_dim = 0;      // at most kMaxHeadDim
  int32_t block_size = 0;
  int32_t max_blocks_per_sequence = 0;
  int64_t query_row_stride = 0;  // elements; num_heads * head_dim when contiguous
  float scale = 1.0f;            // 1 / sqrt(head_dim)
  AttentionDtype dtype = AttentionDtype::kFloat32;
  void* stream = nullptr;  // cudaStream_t; null = the legacy default stream
  // The scalar kernel even where the vector kernel could run (paged_attention.cu; tests compare
  // both on the same layouts).
  bool force_scalar_kernel = false;
  // Optional row tiles: tile t is rows [tile_first_row[t], tile_first_row[t] + tile_num_rows[t])
  // (2 to max_tile_rows rows of one sequence), and single_rows the rows in no tile; together every
  // row once. With tiles, one thread block per (tile, head) reads each key and value once for the
  // tile's rows instead of once per row (tiles of up to kMaxTileRows rows: the vector kernel's
  // tiled form, paged_attention_tiles.cu; taller ones: the tensor-core kernel,
  // paged_attention_mma.cu), and the single rows take the vector kernel as before. Ignored (every
  // row on its own) where only the scalar kernel runs, where the tensor-core kernel cannot take
  // tall tiles, or where the tiles make a grid of fewer than kSmallGridBlocks blocks, where a
  // block per row and more warps a block do better.
  const int32_t* tile_first_row = nullptr;  // [num_tiles]
  const int32_t* tile_num_rows = nullptr;   // [num_tiles]
  int32_t num_tiles = 0;
  const int32_t* single_rows = nullptr;  // [num_single_rows]
  int32_t num_single_rows = 0;
  // The rows of the tallest tile (0: at most kMaxTileRows). The 4-row tile kernel takes at most
  // kMaxTileRows rows a tile, so taller tiles must say so here: they take the tensor-core kernel
  // (16-bit types, head_dim 16, 32, 64 or 128, compute capability 8.0 or later) or, where it
  // cannot run, every row the per-row kernels.
  int32_t max_tile_rows = 0;
  // Set by the launcher, not by callers: the vector kernel's block x runs row row_subset[x].
  const int32_t* row_subset = nullptr;
};

inline constexpr int32_t kMaxHeadDim = 256;
inline constexpr int32_t kMaxTileRows = 4;
inline constexpr int32_t kMaxTensorCoreTileRows = 32;
// Grids of fewer blocks take 16 warps a block (and no tiles), larger ones 4.
inline constexpr int64_t kSmallGridBlocks = 512;

// Validates the shapes and launches the kernel asynchronously on `stream`. Returns nullptr on
// success, else a static message (a bad parameter or the CUDA error of the launch).
const char* LaunchPagedAttention(const PagedAttentionParams& params);

// Whether tiles of more than kMaxTileRows rows run on tensor cores for this dtype and head_dim on
// the current device (else LaunchPagedAttention takes their rows one by one).
bool TensorCoreTilesRun(AttentionDtype dtype, int head_dim);

// Number of CUDA devices, 0 when there is no usable driver or device (GPU tests skip then).
int CudaDeviceCount();

}  // namespace speechllm::engine::cuda

#endif  // SPEECHLLM_ENGINE_CUDA_PAGED_ATTENTION_H_
