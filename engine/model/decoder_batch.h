// DecoderBatch: how the rows of one flattened decoder input belong to sequences: for each sequence
// its new tokens (consecutive rows, in order), the number of tokens already in its KV cache, and
// its block table in the KvPool. Prepare() derives the device tensors (positions, KV slots, block
// tables). Built and consumed on the thread that runs the model.
#ifndef SPEECHLLM_ENGINE_MODEL_DECODER_BATCH_H_
#define SPEECHLLM_ENGINE_MODEL_DECODER_BATCH_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace speechllm::engine {

struct DecoderSequence {
  int64_t num_new_tokens = 0;
  int64_t start_position =
      0;  // tokens of this sequence already cached (= position of the first new one)
  std::vector<int64_t>
      block_table;  // KvPool blocks covering positions [0, start_position + num_new_tokens)
};

// What Prepare() needs to know of the attention that will read the batch (Decoder::
// attention_format() gives the model's).
struct AttentionFormat {
  at::ScalarType dtype = at::kFloat;  // the attention scores' dtype (the model's)
  int64_t head_dim = 0;               // 0: not known, then no tensor-core tiles
};

struct DecoderBatch {
  std::vector<DecoderSequence> sequences;

  // Filled by Prepare().
  at::Tensor positions;  // int64 [total new tokens]
  at::Tensor slots;      // int64 [total new tokens]: block * block_size + offset
  // int64 [blocks] per sequence that attends on its own (undefined for kernel and padded-group
  // sequences, which read their keys through the kernel tables or key_slots)
  std::vector<at::Tensor> block_tables;
  int64_t num_tokens = 0;
  // Sequences with few new tokens (decode steps, short drafts) attend in one padded, batched
  // product; long prefills attend one by one (padding them to a common length would cost more than
  // it saves). The padded group: B sequences x max_query new tokens x max_context keys.
  static constexpr int64_t kMaxBatchedQuery = 8;
  std::vector<bool> in_padded_group;  // per sequence
  int64_t padded_batch = 0, max_query = 0, max_context = 0;
  at::Tensor padded_query_rows;  // int64 [B * max_query]: row of each new token, 0 for padding
  at::Tensor padded_valid;       // int64 [group tokens]: where each group token sits in that layout
  at::Tensor group_rows;         // int64 [group tokens]: the same tokens' rows in the flat batch
  at::Tensor key_slots;          // int64 [B * max_context]: KV slot of key j of group sequence b
  at::Tensor attention_mask;     // [B, 1, max_query, max_context]: 0 where visible, -inf elsewhere

  // On CUDA with the project's kernel (cuda_kernels.h) the short sequences' rows go to one
  // PagedAttention launch per layer instead of the padded group: every new token of sequences with
  // at most kMaxKernelQuery of them. Longer prefills (two or more) form the padded group there,
  // one attention per layer for all of them instead of one per sequence, unless padding would
  // multiply their attention work by more than kMaxPaddingFactor: then the longest contexts leave
  // the group and attend one by one.
  static constexpr int64_t kMaxKernelQuery = 128;
  // kMaxKernelQuery, or SPEECHLLM_MAX_KERNEL_QUERY (1 to 128, read once) so that one GPU run can
  // time chunk prefills both in the kernel and in the padded group (tools/gpu/run_bench.sh).
  static int64_t MaxKernelQuery();
  static constexpr int64_t kMaxPaddingFactor = 4;
  std::vector<bool> in_kernel;  // per sequence
  int64_t kernel_num_rows = 0;
  at::Tensor kernel_rows;          // int64 [kernel rows]: their rows in the flat batch
  at::Tensor kernel_row_sequence;  // int32 [kernel rows]: their row of kernel_block_tables
  at::Tensor kernel_row_position;  // int32 [kernel rows]: their positions
  at::Tensor kernel_block_tables;  // int32 [kernel sequences, max blocks], 0-padded
  // When a kernel sequence has several rows (a chunk prefill), its kernel rows in tiles of 2 to
  // TileRows() rows (kMaxTensorCoreTileRows for the tensor-core kernel; PrepareKernelRows): the
  // kernel reads a sequence's keys once per tile instead of once per row.
  // Rows in no tile (decode rows, a prefill's last one) stay single. No tiles (0, kernel_tiles
  // undefined) when every kernel sequence has one row (decode steps).
  static constexpr int64_t kMaxTileRows = 4;  // cuda::kMaxTileRows
  // kMaxTileRows, or SPEECHLLM_ATTENTION_TILE_ROWS (1 to 4, read once; 1 = no tiles) so that a GPU
  // run can fall back to one block per row.
  static int64_t TileRows();
  // Tiles of a whole chunk (up to this many rows) where the tensor-core kernel runs
  // (CudaTensorCoreTiles): cuda::kMaxTensorCoreTileRows.
  static constexpr int64_t kMaxTensorCoreTileRows = 32;
  int64_t kernel_num_tiles = 0;
  int64_t kernel_num_single_rows = 0;
  int64_t kernel_tile_rows = 0;  // the rows of the tallest tile (0 without tiles)
  // int32 [2 * tiles + single rows], one copy to the device: the tiles' first kernel rows, their
  // row counts, then the single rows (kernel row indices).
  at::Tensor kernel_tiles;
  // Runs of up to `max_rows` rows of one sequence over rows that belong to `row_sequence` (each
  // sequence's rows consecutive), never across sequences.
  static void TileRowsOf(const std::vector<int32_t>& row_sequence, int64_t max_rows,
                         std::vector<int32_t>* first_row, std::vector<int32_t>* num_rows);
  // kernel_tiles' layout for `row_sequence`: the runs of two rows or more as tiles, the others as
  // single rows; empty, with no tiles, when no run has two rows.
  static std::vector<int32_t> KernelTiles(const std::vector<int32_t>& row_sequence,
                                          int64_t max_rows, int64_t* num_tiles,
                                          int64_t* num_single_rows);

  // Derives the tensors on `device` for attention of `format` (the mask in its dtype, tiles for
  // its head size; required where the project's CUDA kernels run, checked). The block tables must
  // be long enough (checked).
  void Prepare(int64_t block_size, at::Device device, AttentionFormat format = {});
  // The kernel rows' tile height for `format` on `device` when the kernel runs there:
  // kMaxTensorCoreTileRows where CudaTensorCoreTiles holds for its dtype and head size and the tile
  // size is not set, TileRows() otherwise.
  static int64_t KernelTileRows(at::Device device, const AttentionFormat& format);
  // The kernel fields alone (Prepare calls it on CUDA when the kernel is enabled; tests call it on
  // the CPU), with tiles of up to `tile_rows` rows (Prepare: KernelTileRows()). Expects in_kernel
  // sized to the sequences and all false.
  void PrepareKernelRows(int64_t block_size, at::Device device, int64_t tile_rows = TileRows());
  // The padded group over the `eligible` sequences not in the kernel (none unless two or more).
  // Expects in_padded_group sized to the sequences and all false, padded_batch 0. Tests call it
  // on the CPU to put long prefills in the group as CUDA does.
  void PreparePaddedGroup(int64_t block_size, at::Device device, at::ScalarType mask_dtype,
                          const std::vector<bool>& eligible);
  // On CUDA with the kernel: the long prefills worth one padded attention (see above).
  std::vector<bool> LongPrefillsToPad() const;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_DECODER_BATCH_H_
