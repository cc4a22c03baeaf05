// DecoderBatch's row tables for the CUDA PagedAttention kernel (label model; computed on the CPU):
// which sequences go to the kernel, each kernel row's flat row, sequence and position, and the
// 0-padded int32 block tables; on the CPU Prepare leaves the kernel out; a lower limit from the
// environment. Then the long prefills that CUDA pads into one attention: which ones, and (with
// the tiny golden checkpoint on the CPU) that the padded group computes what one-by-one attention
// does.
#include "engine/model/decoder_batch.h"

#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/model/qwen2_audio_model.h"
#include "gtest/gtest.h"
#include "tests/model/fixture_model.h"
#include "tests/model/golden_fixture.h"

namespace speechllm::engine {
namespace {

using speechllm::testing::TensorValues;

DecoderBatch FourSequences() {
  DecoderBatch batch;
  batch.sequences = {
      {3, 0, {5}},                                                     // a short prefill
      {1, 20, {2, 7}},                                                 // a decode token
      {200, 0, {10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22}},  // a long prefill: dense
      {2, 33, {1, 4, 9, 3}},  // a draft; its table is longer than it needs
  };
  return batch;
}

TEST(DecoderBatchTest, KernelRowsFollowTheBlockTables) {
  DecoderBatch batch = FourSequences();
  batch.in_kernel.assign(batch.sequences.size(), false);
  batch.PrepareKernelRows(/*block_size=*/16, at::kCPU);
  EXPECT_EQ(batch.in_kernel, (std::vector<bool>{true, true, false, true}));
  EXPECT_EQ(batch.kernel_num_rows, 6);
  EXPECT_EQ(TensorValues<int64_t>(batch.kernel_rows), (std::vector<int64_t>{0, 1, 2, 3, 204, 205}));
  EXPECT_EQ(TensorValues<int32_t>(batch.kernel_row_sequence),
            (std::vector<int32_t>{0, 0, 0, 1, 2, 2}));
  EXPECT_EQ(TensorValues<int32_t>(batch.kernel_row_position),
            (std::vector<int32_t>{0, 1, 2, 20, 33, 34}));
  ASSERT_EQ(batch.kernel_block_tables.sizes(), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(TensorValues<int32_t>(batch.kernel_block_tables),
            (std::vector<int32_t>{5, 0, 0, 2, 7, 0, 1, 4, 9}));
}

// Kernel rows of a sequence with several (prefills) go in tiles of two to four, never across
// sequences; the rest stay single. Here 3 + 1 + 2 rows make two tiles and one single row.
TEST(DecoderBatchTest, KernelRowsOfPrefillsComeInTiles) {
  if (DecoderBatch::TileRows() != DecoderBatch::kMaxTileRows) {
    GTEST_SKIP() << "SPEECHLLM_ATTENTION_TILE_ROWS is set";
  }
  DecoderBatch batch = FourSequences();
  batch.in_kernel.assign(batch.sequences.size(), false);
  batch.PrepareKernelRows(/*block_size=*/16, at::kCPU);
  EXPECT_EQ(batch.kernel_tile_rows, 3);
  ASSERT_EQ(batch.kernel_num_tiles, 2);
  EXPECT_EQ(batch.kernel_num_single_rows, 1);
  EXPECT_EQ(TensorValues<int32_t>(batch.kernel_tiles), (std::vector<int32_t>{0, 4, 3, 2, 3}));

  std::vector<int32_t> first, count;
  DecoderBatch::TileRowsOf({0, 0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2}, 4, &first, &count);
  EXPECT_EQ(first, (std::vector<int32_t>{0, 4, 6, 7, 11, 15}));
  EXPECT_EQ(count, (std::vector<int32_t>{4, 2, 1, 4, 4, 1}));
  int64_t tiles = 0, singles = 0;
  EXPECT_EQ(DecoderBatch::KernelTiles({0, 0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2}, 4, &tiles,
                                      &singles),
            (std::vector<int32_t>{0, 4, 7, 11, 4, 2, 4, 4, 6, 15}));
  EXPECT_EQ(tiles, 4);
  EXPECT_EQ(singles, 2);
  // Runs of one row only (or tiles of one row): no tiles at all.
  EXPECT_TRUE(DecoderBatch::KernelTiles({0, 1, 2}, 4, &tiles, &singles).empty());
  EXPECT_TRUE(DecoderBatch::KernelTiles({0, 0, 1}, 1, &tiles, &singles).empty());
  EXPECT_EQ(tiles, 0);
  EXPECT_EQ(singles, 0);
}

// Tiles for the tensor-core kernel hold a whole chunk prefill (27 rows) and never span two
// sequences; the batch says which tiling it made.
TEST(DecoderBatchTest, TensorCoreTilesHoldAWholeChunk) {
  DecoderBatch batch;
  batch.sequences = {{27, 200, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}},
                     {1, 40, {20, 21, 22}},
                     {40, 0, {30, 31, 32}}};
  batch.in_kernel.assign(batch.sequences.size(), false);
  batch.PrepareKernelRows(/*block_size=*/16, at::kCPU, DecoderBatch::kMaxTensorCoreTileRows);
  EXPECT_EQ(batch.kernel_tile_rows, 32);  // the tallest tile
  EXPECT_EQ(batch.kernel_num_rows, 27 + 1 + 40);
  ASSERT_EQ(batch.kernel_num_tiles, 3);  // 27 rows, then the 40-row prefill as 32 + 8
  EXPECT_EQ(batch.kernel_num_single_rows, 1);
  EXPECT_EQ(TensorValues<int32_t>(batch.kernel_tiles),
            (std::vector<int32_t>{0, 28, 60, 27, 32, 8, 27}));
}

// Decode steps (one row per sequence) keep one thread block per row: no tiles.
TEST(DecoderBatchTest, DecodeRowsAreNoTiles) {
  DecoderBatch batch;
  batch.sequences = {{1, 20, {1, 2}}, {1, 5, {3}}};
  batch.in_kernel.assign(batch.sequences.size(), false);
  batch.PrepareKernelRows(/*block_size=*/16, at::kCPU);
  EXPECT_EQ(batch.kernel_num_rows, 2);
  EXPECT_EQ(batch.kernel_num_tiles, 0);
  EXPECT_EQ(batch.kernel_num_single_rows, 0);
  EXPECT_FALSE(batch.kernel_tiles.defined());
}

// FourSequences' kernel rows prepared in a fresh process with `variable`=`value` (the limits are
// read once per process); that process exits 0 when `holds` is true of them.
void ExpectKernelRowsWithEnvironment(const char* variable, const char* value,
                                     bool (*holds)(const DecoderBatch&)) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        setenv(variable, value, 1);
        DecoderBatch batch = FourSequences();
        batch.in_kernel.assign(batch.sequences.size(), false);
        batch.PrepareKernelRows(/*block_size=*/16, at::kCPU);
        std::exit(holds(batch) ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "")
      << variable << "=" << value;
}

// SPEECHLLM_ATTENTION_TILE_ROWS=1 turns the tiles off.
TEST(DecoderBatchTest, TilesCanBeTurnedOff) {
  ExpectKernelRowsWithEnvironment("SPEECHLLM_ATTENTION_TILE_ROWS", "1", [](const DecoderBatch& b) {
    return b.kernel_num_rows == 6 && b.kernel_num_tiles == 0;
  });
}

// SPEECHLLM_MAX_KERNEL_QUERY sends longer prefills to the padded group instead: one GPU run times
// chunk prefills both ways.
TEST(DecoderBatchTest, TheKernelQueryLimitCanBeLoweredForComparisons) {
  ExpectKernelRowsWithEnvironment("SPEECHLLM_MAX_KERNEL_QUERY", "2", [](const DecoderBatch& b) {
    return b.in_kernel == std::vector<bool>{false, true, false, true};
  });
}

TEST(DecoderBatchTest, OnTheCpuPrepareKeepsTheDensePaths) {
  DecoderBatch batch = FourSequences();
  batch.Prepare(/*block_size=*/16, at::kCPU);
  EXPECT_EQ(batch.kernel_num_rows, 0);
  EXPECT_EQ(batch.in_kernel, std::vector<bool>(4, false));
  EXPECT_EQ(batch.padded_batch, 3);  // the three short sequences share one padded product
  EXPECT_EQ(batch.num_tokens, 206);
}

TEST(DecoderBatchTest, LongPrefillsArePaddedUnlessPaddingCostsTooMuch) {
  DecoderBatch batch;
  // Long prefills of similar size pad well; the one with a 3,000-token context would make the
  // padded product several times the real work, so it attends alone; the decode token is in the
  // kernel.
  batch.sequences = {{200, 0, {}}, {1, 20, {}}, {150, 40, {}}, {130, 2900, {}}, {180, 10, {}}};
  batch.in_kernel.assign(batch.sequences.size(), false);
  batch.in_kernel[1] = true;
  EXPECT_EQ(batch.LongPrefillsToPad(), (std::vector<bool>{true, false, true, false, true}));
  // A single long prefill is no group.
  batch.sequences = {{200, 0, {}}, {1, 20, {}}};
  batch.in_kernel = {false, true};
  EXPECT_EQ(batch.LongPrefillsToPad(), (std::vector<bool>{false, false}));
}

TEST(DecoderBatchTest, PaddedLongPrefillsMatchOneByOneAttention) {
  c10::InferenceMode guard;
  const auto model = speechllm::testing::LoadFixtureModel();
  ASSERT_NE(model, nullptr);
  const Decoder& decoder = model->decoder();
  constexpr int64_t kBlock = 4;
  // Three prefills longer than the CPU's padded-group limit, one of them after 10 cached tokens.
  std::vector<DecoderSequence> sequences = {{20, 0, {}}, {35, 10, {}}, {12, 0, {}}};
  int64_t next_block = 0;
  for (DecoderSequence& s : sequences) {
    for (int64_t p = 0; p < s.start_position + s.num_new_tokens; p += kBlock)
      s.block_table.push_back(next_block++);
  }
  std::vector<int64_t> ids;
  for (int64_t i = 0; i < 67; ++i) ids.push_back((i * 37) % 450 + 5);
  const at::Tensor input = decoder.Embed(at::tensor(ids, at::TensorOptions().dtype(at::kLong)));
  KvPool one_by_one_kv(model->config().text, next_block, kBlock, at::kFloat, at::kCPU);
  KvPool padded_kv(model->config().text, next_block, kBlock, at::kFloat, at::kCPU);
  // The 10 cached tokens of the second sequence, in both pools.
  for (KvPool* kv : {&one_by_one_kv, &padded_kv}) {
    DecoderBatch context;
    context.sequences = {{10, 0, sequences[1].block_table}};
    context.Prepare(kBlock, at::kCPU);
    decoder.Forward(decoder.Embed(at::tensor(std::vector<int64_t>(10, 42),
                                             at::TensorOptions().dtype(at::kLong))),
                    context, kv);
  }
  DecoderBatch one_by_one;
  one_by_one.sequences = sequences;
  one_by_one.Prepare(kBlock, at::kCPU);
  ASSERT_EQ(one_by_one.padded_batch, 0);
  const at::Tensor expected = decoder.Forward(input, one_by_one, &one_by_one_kv);

  DecoderBatch padded;
  padded.sequences = sequences;
  padded.Prepare(kBlock, at::kCPU);
  padded.PreparePaddedGroup(kBlock, at::kCPU, at::kFloat, std::vector<bool>(3, true));
  ASSERT_EQ(padded.padded_batch, 3);
  ASSERT_EQ(padded.max_query, 35);
  ASSERT_EQ(padded.max_context, 45);
  const at::Tensor out = decoder.Forward(input, padded, &padded_kv);
  const double error = ((out - expected).norm() / expected.norm()).item<double>();
  std::printf("padded long prefills: hidden relative error %.3g\n", error);
  EXPECT_LE(error, 1e-5);
  const double kv_error =
      ((padded_kv.keys(0) - one_by_one_kv.keys(0)).norm() / one_by_one_kv.keys(0).norm())
          .item<double>();
  EXPECT_LE(kv_error, 1e-5);
}

TEST(DecoderBatchTest, PositionsPastTheRotaryTableAreRefused) {
  c10::InferenceMode guard;
  const auto model = speechllm::testing::LoadFixtureModel();
  ASSERT_NE(model, nullptr);
  const Decoder& decoder = model->decoder();
  const int64_t max_positions = model->config().text.max_position_embeddings;
  constexpr int64_t kBlock = 4;
  const int64_t blocks = (max_positions + 1 + kBlock - 1) / kBlock;
  KvPool kv(model->config().text, blocks, kBlock, at::kFloat, at::kCPU);
  std::vector<int64_t> table;
  for (int64_t b = 0; b < blocks; ++b) table.push_back(b);
  const at::Tensor token =
      decoder.Embed(at::tensor({int64_t{42}}, at::TensorOptions().dtype(at::kLong)));
  DecoderBatch last;  // the last position the tables hold is fine
  last.sequences = {{1, max_positions - 1, table}};
  last.Prepare(kBlock, at::kCPU);
  EXPECT_NO_THROW(decoder.Forward(token, last, &kv));
  DecoderBatch past;  // one past it is an error, not a read beyond the tables
  past.sequences = {{1, max_positions, table}};
  past.Prepare(kBlock, at::kCPU);
  try {
    decoder.Forward(token, past, &kv);
    ADD_FAILURE() << "position " << max_positions << " was accepted";
  } catch (const c10::Error& error) {
    EXPECT_NE(std::string(error.what()).find("max_position_embeddings"), std::string::npos)
        << error.what();
  }
}

}  // namespace
}  // namespace speechllm::engine
