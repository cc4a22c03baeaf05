// DecoderBatch's row tables for the CUDA PagedAttention kernel (label model; computed on the CPU):
// which sequences go to the kernel, each kernel row's flat row, sequence and position, and the
// 0-padded int32 block tables; on the CPU Prepare leaves the kernel out.
#include "engine/model/decoder_batch.h"

#include <vector>

#include "gtest/gtest.h"

namespace speechllm::engine {
namespace {

template <typename T>
std::vector<T> Values(const at::Tensor& tensor) {
  const at::Tensor contiguous = tensor.contiguous();
  return std::vector<T>(contiguous.data_ptr<T>(), contiguous.data_ptr<T>() + contiguous.numel());
}

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
  EXPECT_EQ(Values<int64_t>(batch.kernel_rows), (std::vector<int64_t>{0, 1, 2, 3, 204, 205}));
  EXPECT_EQ(Values<int32_t>(batch.kernel_row_sequence), (std::vector<int32_t>{0, 0, 0, 1, 2, 2}));
  EXPECT_EQ(Values<int32_t>(batch.kernel_row_position),
            (std::vector<int32_t>{0, 1, 2, 20, 33, 34}));
  ASSERT_EQ(batch.kernel_block_tables.sizes(), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(Values<int32_t>(batch.kernel_block_tables),
            (std::vector<int32_t>{5, 0, 0, 2, 7, 0, 1, 4, 9}));
}

TEST(DecoderBatchTest, OnTheCpuPrepareKeepsTheDensePaths) {
  DecoderBatch batch = FourSequences();
  batch.Prepare(/*block_size=*/16, at::kCPU);
  EXPECT_EQ(batch.kernel_num_rows, 0);
  EXPECT_EQ(batch.in_kernel, std::vector<bool>(4, false));
  EXPECT_EQ(batch.padded_batch, 3);  // the three short sequences share one padded product
  EXPECT_EQ(batch.num_tokens, 206);
}

}  // namespace
}  // namespace speechllm::engine
