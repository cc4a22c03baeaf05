// The CUDA PagedAttention kernel (engine/cuda) against the CPU reference attention (label gpu;
// skips without a usable device): random queries and a KV pool whose blocks are shuffled, several
// sequences at once (decode rows, short prefills, a block-boundary context, a long context), for
// the head layouts of the tiny fixture, the trained small model and Qwen2-Audio-7B, in float32
// (same tolerance as the CPU path) and bfloat16 (inputs rounded, output tolerance 1e-2), row by row
// and in tiles of a sequence's prefill rows.
#include <cuda_runtime.h>

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/cuda/paged_attention.h"
#include "engine/model/causal_attention.h"
#include "engine/model/decoder_batch.h"
#include "gtest/gtest.h"
#include "tests/model/cuda_test_util.h"

namespace speechllm::engine {
namespace {

using speechllm::testing::DeviceBuffer;

struct Layout {
  int num_heads, num_kv_heads, head_dim;
};

struct Sequence {
  int start_position, num_new_tokens;
};

std::string DtypeName(at::ScalarType dtype) {
  return dtype == at::kBFloat16 ? "bfloat16" : dtype == at::kHalf ? "float16" : "float32";
}
cuda::AttentionDtype AttentionDtypeOf(at::ScalarType dtype) {
  return dtype == at::kBFloat16 ? cuda::AttentionDtype::kBFloat16
         : dtype == at::kHalf   ? cuda::AttentionDtype::kFloat16
                                : cuda::AttentionDtype::kFloat32;
}

class PagedAttentionGpuTest : public ::testing::TestWithParam<std::tuple<Layout, at::ScalarType>> {
 protected:
  void SetUp() override {
    if (cuda::CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
  }
};

// Runs the kernel over `sequences` (one thread block per row and head, or with `tile_rows` > 0 per
// tile of up to that many rows of a sequence and head, as DecoderBatch makes them: 4 for the
// vector tile kernel, 32 for the tensor-core kernel) and compares with the CPU.
void ExpectMatchesTheCpuReference(const Layout& layout, at::ScalarType dtype,
                                  const std::vector<Sequence>& sequences, int tile_rows = 0,
                                  int block_size = 16) {
  const bool tiles = tile_rows > 0;
  std::mt19937 random(7);
  // Blocks of every sequence, drawn from a shuffled pool with spare blocks.
  std::vector<std::vector<int>> tables;
  int total_blocks = 0;
  for (const Sequence& s : sequences) {
    const int blocks = (s.start_position + s.num_new_tokens + block_size - 1) / block_size;
    tables.emplace_back(blocks);
    total_blocks += blocks;
  }
  const int pool_blocks = total_blocks + 5;
  std::vector<int> order(pool_blocks);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), random);
  int next = 0, max_blocks = 1, num_rows = 0;
  for (auto& table : tables) {
    for (int& block : table) block = order[next++];
    max_blocks = std::max<int>(max_blocks, static_cast<int>(table.size()));
  }
  for (const Sequence& s : sequences) num_rows += s.num_new_tokens;

  at::manual_seed(11);
  const auto cpu = at::TensorOptions().dtype(at::kFloat);
  // Inputs rounded to `dtype`; the reference computes in float32 on the rounded values.
  const at::Tensor query =
      at::randn({num_rows, layout.num_heads, layout.head_dim}, cpu).to(dtype).to(at::kFloat);
  const at::Tensor keys =
      at::randn({pool_blocks * block_size, layout.num_kv_heads, layout.head_dim}, cpu)
          .to(dtype)
          .to(at::kFloat);
  const at::Tensor values = at::randn_like(keys).to(dtype).to(at::kFloat);

  std::vector<int32_t> row_sequence, row_position, block_tables(sequences.size() * max_blocks, 0);
  std::vector<at::Tensor> expected;
  int row = 0;
  for (size_t b = 0; b < sequences.size(); ++b) {
    const Sequence& s = sequences[b];
    const int context = s.start_position + s.num_new_tokens;
    std::vector<int64_t> slots;
    for (int j = 0; j < context; ++j)
      slots.push_back(tables[b][j / block_size] * block_size + j % block_size);
    const at::Tensor slot_tensor = at::tensor(slots, at::TensorOptions().dtype(at::kLong));
    expected.push_back(CausalAttention(query.narrow(0, row, s.num_new_tokens),
                                       keys.index_select(0, slot_tensor),
                                       values.index_select(0, slot_tensor), s.start_position));
    for (int i = 0; i < s.num_new_tokens; ++i) {
      row_sequence.push_back(static_cast<int32_t>(b));
      row_position.push_back(s.start_position + i);
    }
    for (size_t j = 0; j < tables[b].size(); ++j) block_tables[b * max_blocks + j] = tables[b][j];
    row += s.num_new_tokens;
  }
  const at::Tensor reference = at::cat(expected, 0);

  const auto int32 = at::TensorOptions().dtype(at::kInt);
  DeviceBuffer query_device(query.to(dtype).contiguous()), keys_device(keys.to(dtype).contiguous()),
      values_device(values.to(dtype).contiguous());
  DeviceBuffer sequence_device(at::tensor(row_sequence, int32)),
      position_device(at::tensor(row_position, int32)),
      tables_device(at::tensor(block_tables, int32));
  const at::Tensor output =
      at::empty({num_rows, layout.num_heads * layout.head_dim}, at::TensorOptions().dtype(dtype));
  DeviceBuffer output_device(output);
  int64_t num_tiles = 0, num_single_rows = 0;
  std::vector<int32_t> packed_tiles = DecoderBatch::KernelTiles(
      row_sequence, tiles ? tile_rows : DecoderBatch::kMaxTileRows, &num_tiles, &num_single_rows);
  packed_tiles.push_back(0);  // never an empty buffer
  DeviceBuffer tiles_device(at::tensor(packed_tiles, int32));
  // The tiled kernel runs where the vector kernel can (rows of 2 to 32 aligned 16-byte pieces) and
  // the tiles make a grid of at least cuda::kSmallGridBlocks blocks; the tensor-core kernel (tiles
  // of more than four rows) where cuda::TensorCoreTilesRun says so; elsewhere the rows go one by
  // one, which the message says.
  const int64_t row_bytes = static_cast<int64_t>(layout.head_dim) * at::elementSize(dtype);
  const int64_t lanes = row_bytes / 16;
  const bool vector_layout =
      row_bytes % 16 == 0 && lanes >= 2 && lanes <= 32 && (lanes & (lanes - 1)) == 0;
  const bool tensor_cores = tile_rows > cuda::kMaxTileRows && num_tiles > 0 && vector_layout &&
                            cuda::TensorCoreTilesRun(AttentionDtypeOf(dtype), layout.head_dim) &&
                            num_tiles * layout.num_heads >= cuda::kSmallGridBlocks;
  if (tile_rows > cuda::kMaxTileRows && dtype != at::kFloat) {
    // Asked apart from the kernel's own check, so that a pass cannot hide a kernel that never ran.
    int major = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0);
    const int d = layout.head_dim;
    if (major >= 8 && (d == 16 || d == 32 || d == 64 || d == 128)) {
      EXPECT_TRUE(cuda::TensorCoreTilesRun(AttentionDtypeOf(dtype), d));
    }
  }
  const bool tiled =
      tensor_cores || (tiles && tile_rows <= cuda::kMaxTileRows && num_tiles > 0 && vector_layout &&
                       num_tiles * layout.num_heads >= cuda::kSmallGridBlocks);

  cuda::PagedAttentionParams p;
  p.query = query_device.data();
  p.key_cache = keys_device.data();
  p.value_cache = values_device.data();
  p.output = output_device.data();
  p.row_sequence = static_cast<const int32_t*>(sequence_device.data());
  p.row_position = static_cast<const int32_t*>(position_device.data());
  p.block_tables = static_cast<const int32_t*>(tables_device.data());
  p.num_rows = num_rows;
  p.num_heads = layout.num_heads;
  p.num_kv_heads = layout.num_kv_heads;
  p.head_dim = layout.head_dim;
  p.block_size = block_size;
  p.max_blocks_per_sequence = max_blocks;
  p.query_row_stride = static_cast<int64_t>(layout.num_heads) * layout.head_dim;
  p.scale = 1.0f / std::sqrt(static_cast<float>(layout.head_dim));
  p.dtype = AttentionDtypeOf(dtype);
  if (tiles && num_tiles > 0) {
    p.tile_first_row = static_cast<const int32_t*>(tiles_device.data());
    p.tile_num_rows = p.tile_first_row + num_tiles;
    p.num_tiles = static_cast<int32_t>(num_tiles);
    p.single_rows = p.tile_num_rows + num_tiles;
    p.num_single_rows = static_cast<int32_t>(num_single_rows);
    p.max_tile_rows = tile_rows;
  }
  // The vector kernel runs wherever a row is 2 to 32 aligned 16-byte pieces (every layout here
  // but head_dim 24, 8 in 16-bit types and 256 in float32); the scalar kernel is checked on the
  // same inputs.
  output_device.Fill(0xff);  // NaN bytes: every launch must write every element
  for (const bool force_scalar : {false, true}) {
    p.force_scalar_kernel = force_scalar;
    const char* error = cuda::LaunchPagedAttention(p);
    ASSERT_EQ(error, nullptr) << error;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    output_device.CopyTo(output);

    const at::Tensor got = output.to(at::kFloat);
    const double max_abs = (got - reference).abs().max().item<double>();
    const double relative = ((got - reference).norm() / reference.norm()).item<double>();
    // Row by row too: one wrong row among many short-context ones would hide in the whole's norm.
    const double worst_row =
        ((got - reference).norm(2, {1}) / reference.norm(2, {1})).max().item<double>();
    std::printf(
        "heads %d/%d, head_dim %d, %s, %d rows%s, %s kernel: max |err| %.3g, relative %.3g, worst "
        "row %.3g\n",
        layout.num_heads, layout.num_kv_heads, layout.head_dim, DtypeName(dtype).c_str(), num_rows,
        tiled && !force_scalar ? absl::StrCat(" in ", num_tiles, tensor_cores ? " tensor-core" : "",
                                              " tiles and ", num_single_rows, " single rows")
                                     .c_str()
                               : "",
        force_scalar ? "scalar" : "default", max_abs, relative, worst_row);
    // Outputs rounded to the type: 2^-8 steps for bfloat16, 2^-11 for float16.
    const double bound = dtype == at::kFloat ? 1e-5 : dtype == at::kHalf ? 2e-3 : 1e-2;
    EXPECT_LE(relative, bound) << (force_scalar ? "scalar kernel" : "default kernel");
    EXPECT_LE(worst_row, 2 * bound) << (force_scalar ? "scalar kernel" : "default kernel");
    output_device.Fill(0xff);
  }
}

// Parameters that pass every check: 4 heads over 2 KV heads of 64, one row; pointers to `dummy`
// (never launched with: the checks under test refuse first).
cuda::PagedAttentionParams ValidParams(int* dummy) {
  cuda::PagedAttentionParams p;
  p.query = p.key_cache = p.value_cache = dummy;
  p.output = dummy;
  p.row_sequence = p.row_position = p.block_tables = dummy;
  p.num_rows = 1;
  p.num_heads = 4;
  p.num_kv_heads = 2;
  p.head_dim = 64;
  p.block_size = 16;
  p.max_blocks_per_sequence = 1;
  p.query_row_stride = 256;
  return p;
}

TEST(PagedAttentionParams, BadShapesAreRefusedBeforeAnyLaunch) {
  cuda::PagedAttentionParams empty;
  empty.num_rows = 0;
  EXPECT_EQ(cuda::LaunchPagedAttention(empty), nullptr);  // nothing to do
  empty.num_rows = 1;
  EXPECT_NE(cuda::LaunchPagedAttention(empty), nullptr);  // null pointers
  int dummy = 0;
  cuda::PagedAttentionParams p = ValidParams(&dummy);
  p.num_kv_heads = 3;
  EXPECT_NE(cuda::LaunchPagedAttention(p), nullptr);  // 4 heads over 3 KV heads
  p.num_kv_heads = 2;
  p.head_dim = 512;
  EXPECT_NE(cuda::LaunchPagedAttention(p), nullptr);  // head_dim above 256
  p.head_dim = 64;
  p.query_row_stride = 255;
  EXPECT_NE(cuda::LaunchPagedAttention(p), nullptr);  // overlapping rows
}

// Named apart (Tiles) with the tiled cases, for run_bench.sh's filters.
TEST(PagedAttentionParams, BadTilesAreRefusedBeforeAnyLaunch) {
  int dummy = 0;
  cuda::PagedAttentionParams p = ValidParams(&dummy);
  p.num_rows = 3;
  p.num_tiles = 1;
  EXPECT_NE(cuda::LaunchPagedAttention(p), nullptr);  // tiles without their arrays
  p.tile_first_row = p.tile_num_rows = &dummy;
  p.num_tiles = 2;
  EXPECT_NE(cuda::LaunchPagedAttention(p), nullptr);  // two tiles need four rows
  p.num_tiles = 1;
  p.num_single_rows = 1;
  EXPECT_NE(cuda::LaunchPagedAttention(p), nullptr);  // single rows without their array
  p.single_rows = &dummy;
  EXPECT_NE(cuda::LaunchPagedAttention(p), nullptr);  // no max_tile_rows: the kernel is unknown
  p.max_tile_rows = 2;
  p.row_subset = &dummy;
  EXPECT_NE(cuda::LaunchPagedAttention(p), nullptr);  // row_subset is the launcher's
}

// Named apart (TensorCore) with the tensor-core cases, for run_bench.sh's filters.
TEST(PagedAttentionParams, TensorCoreTileHeightsAreChecked) {
  int dummy = 0;
  cuda::PagedAttentionParams p = ValidParams(&dummy);
  p.num_rows = 3;
  p.num_tiles = 1;
  p.tile_first_row = p.tile_num_rows = p.single_rows = &dummy;
  p.num_single_rows = 1;
  p.max_tile_rows = cuda::kMaxTensorCoreTileRows + 1;
  EXPECT_NE(cuda::LaunchPagedAttention(p), nullptr);  // taller tiles than any kernel takes
  p.max_tile_rows = -1;
  EXPECT_NE(cuda::LaunchPagedAttention(p), nullptr);
}

// The host builds tall tiles only for attention the tensor-core kernel takes: a 16-bit dtype and
// head size 16, 32, 64 or 128 on a device of compute capability 8.0 or later (needs the CUDA
// libtorch, whose inference mode switches the kernels on); Prepare there refuses a batch without
// the decoder's format. Named apart (TensorCore) like the kernel's cases.
TEST(DecoderBatchOnCuda, TensorCoreTileHeightFollowsTheAttentionFormat) {
  if (cuda::CudaDeviceCount() == 0 || !at::hasCUDA())
    GTEST_SKIP() << "no CUDA device (or a CPU libtorch)";
  int major = 0;
  ASSERT_EQ(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0), cudaSuccess);
  if (major < 8) GTEST_SKIP() << "compute capability " << major << ".x has no tensor-core tiles";
  for (const char* variable : {"SPEECHLLM_ATTENTION_TILE_ROWS", "SPEECHLLM_ATTENTION_TENSOR_CORES",
                               "SPEECHLLM_USE_CUDA_KERNELS", "SPEECHLLM_MAX_KERNEL_QUERY"}) {
    if (std::getenv(variable) != nullptr) GTEST_SKIP() << variable << " is set";
  }
  c10::InferenceMode guard;
  const at::Device device("cuda:0");
  for (const int64_t head_dim : {16, 32, 64, 128}) {
    EXPECT_EQ(DecoderBatch::KernelTileRows(device, {at::kBFloat16, head_dim}),
              DecoderBatch::kMaxTensorCoreTileRows)
        << head_dim;
    EXPECT_EQ(DecoderBatch::KernelTileRows(device, {at::kHalf, head_dim}),
              DecoderBatch::kMaxTensorCoreTileRows)
        << head_dim;
    EXPECT_EQ(DecoderBatch::KernelTileRows(device, {at::kFloat, head_dim}),
              DecoderBatch::kMaxTileRows)
        << head_dim;
  }
  for (const int64_t head_dim : {0, 8, 24, 80, 96, 256}) {
    EXPECT_EQ(DecoderBatch::KernelTileRows(device, {at::kBFloat16, head_dim}),
              DecoderBatch::kMaxTileRows)
        << head_dim;
  }
  // The CPU never takes the kernel's tiles.
  EXPECT_EQ(DecoderBatch::KernelTileRows(at::kCPU, {at::kBFloat16, 128}),
            DecoderBatch::kMaxTileRows);
  // Where the kernels run, Prepare needs the decoder's format (a default one would lose the tiles).
  DecoderBatch batch;
  batch.sequences = {{27, 200, std::vector<int64_t>(15, 0)}};
  EXPECT_THROW(batch.Prepare(/*block_size=*/16, device), c10::Error);
  batch.Prepare(/*block_size=*/16, device, {at::kBFloat16, 128});
  EXPECT_EQ(batch.kernel_tile_rows, 27);
}

TEST_P(PagedAttentionGpuTest, MatchesTheCpuReference) {
  const auto [layout, dtype] = GetParam();
  // Decode rows, short and long prefills, a block-boundary context: a grid of 173 rows x heads
  // blocks, which takes the 4-warp kernel at every layout here.
  ExpectMatchesTheCpuReference(layout, dtype,
                               {{0, 1}, {0, 37}, {15, 1}, {16, 5}, {300, 1}, {47, 128}});
  // Blocks of 12 tokens take the kernels' division path (16 takes the power-of-two one).
  ExpectMatchesTheCpuReference(layout, dtype, {{0, 1}, {11, 2}, {12, 1}, {300, 1}, {47, 25}},
                               /*tile_rows=*/0, /*block_size=*/12);
}

// The same sequences as MatchesTheCpuReference, chunk prefills of 27 rows after a few hundred
// cached tokens with single rows between them, and 24 chunk prefills (150 streams' in miniature:
// with 4-row tiles 140 tiles, a tiled grid at four heads too), in tiles of up to `tile_rows` rows.
void ExpectTilesMatchTheCpuReference(const Layout& layout, at::ScalarType dtype, int tile_rows) {
  ExpectMatchesTheCpuReference(layout, dtype,
                               {{0, 1}, {0, 37}, {15, 1}, {16, 5}, {300, 1}, {47, 128}}, tile_rows);
  ExpectMatchesTheCpuReference(layout, dtype, {{200, 27}, {12, 4}, {0, 2}, {229, 27}, {400, 3}},
                               tile_rows);
  std::vector<Sequence> chunks;
  for (int s = 0; s < 24; ++s) chunks.push_back({180 + 7 * s, s % 5 == 4 ? 1 : 27});
  ExpectMatchesTheCpuReference(layout, dtype, chunks, tile_rows);
}

// The tiled kernel (rows of a sequence's prefill share each key load), tiles of two to four rows;
// the message says where the rows went one by one. Named apart (Tiles) so that run_bench.sh can
// tell a tile failure from the per-row kernel's.
TEST_P(PagedAttentionGpuTest, TilesOfPrefillRowsMatchTheCpuReference) {
  const auto [layout, dtype] = GetParam();
  ExpectTilesMatchTheCpuReference(layout, dtype, /*tile_rows=*/4);
}

// The tensor-core kernel: tiles of a whole chunk (up to 32 rows; a 128-row prefill as four), the
// single rows through the vector kernel beside it. In float32, at head sizes it does not take and
// in small grids, the launcher runs every row on its own, which is checked too. Named apart
// (TensorCore) so that run_bench.sh can turn it off alone.
TEST_P(PagedAttentionGpuTest, TensorCoreChunksMatchTheCpuReference) {
  const auto [layout, dtype] = GetParam();
  ExpectTilesMatchTheCpuReference(layout, dtype, /*tile_rows=*/32);
  // Long contexts with a decode row every tenth sequence, in a grid large enough for the
  // tensor-core kernel: at four heads 150 streams' chunk prefills (600 blocks, contexts of 200 to
  // 1,700 tokens), at many heads 22 chunks after 1,000 to 1,525 tokens (the pool of 150 long
  // contexts at 32 heads would be gigabytes on the host).
  std::vector<Sequence> chunks;
  const bool many_heads = layout.num_heads >= 16;
  for (int s = 0; s < (many_heads ? 22 : 150); ++s) {
    chunks.push_back({many_heads ? 1000 + 25 * s : 200 + 10 * s, s % 10 == 9 ? 1 : 27});
  }
  ExpectMatchesTheCpuReference(layout, dtype, chunks, /*tile_rows=*/32);
}

TEST_P(PagedAttentionGpuTest, ASmallDecodeBatchMatchesTheCpuReference) {
  const auto [layout, dtype] = GetParam();
  // Two decode rows (batch 2 of the 7B model: 64 blocks): the 16-warp kernel for small grids,
  // with contexts shorter than, equal to and far longer than its 16 warps.
  ExpectMatchesTheCpuReference(layout, dtype, {{1000, 1}, {15, 1}});
  ExpectMatchesTheCpuReference(layout, dtype, {{0, 1}, {3, 1}});
}

INSTANTIATE_TEST_SUITE_P(
    Layouts, PagedAttentionGpuTest,
    ::testing::Combine(::testing::Values(Layout{4, 2, 8}, Layout{4, 2, 16}, Layout{4, 2, 24},
                                         Layout{4, 2, 32}, Layout{4, 2, 64}, Layout{32, 32, 128},
                                         Layout{28, 4, 128}, Layout{4, 1, 256}),
                       ::testing::Values(at::kFloat, at::kBFloat16, at::kHalf)),
    [](const ::testing::TestParamInfo<std::tuple<Layout, at::ScalarType>>& info) {
      const Layout& layout = std::get<0>(info.param);
      return "heads" + std::to_string(layout.num_heads) + "_kv" +
             std::to_string(layout.num_kv_heads) + "_dim" + std::to_string(layout.head_dim) + "_" +
             DtypeName(std::get<1>(info.param));
    });

}  // namespace
}  // namespace speechllm::engine
