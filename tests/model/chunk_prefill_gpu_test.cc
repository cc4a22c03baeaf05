// Streaming chunk prefills through the whole CUDA decoder (label gpu; skips without a device or
// with a CPU libtorch): 150 sequences, each a 27-token chunk after 150 to 299 cached tokens (every
// tenth a single decode row), as a step of 150 real-time streams brings them. At the tiny model's
// four heads that is a grid of 540 tiles x heads, large enough for the tensor-core tiles in 16-bit
// types, so their wiring (the batch's tiles, block tables and KV slots, the launcher's choice) is
// checked end to end, not only the kernel: the logits of every chunk row must match the CPU
// decoder in float32 (float32 1e-4 relative, bfloat16 3e-2 as the golden test's bound).
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "engine/model/cuda_kernels.h"
#include "engine/model/qwen2_audio_model.h"
#include "gtest/gtest.h"
#include "tests/model/golden_fixture.h"

namespace speechllm::engine {
namespace {

using speechllm::testing::Compare;
using speechllm::testing::GoldenFixture;
using speechllm::testing::TensorErrors;

constexpr int64_t kSequences = 150, kChunkTokens = 27, kBlock = 16;

struct Stream {
  int64_t cached = 0, chunk = 0;
  std::vector<int64_t> block_table;
};

std::vector<Stream> Streams() {
  std::vector<Stream> streams;
  int64_t next_block = 0;
  for (int64_t s = 0; s < kSequences; ++s) {
    Stream stream{150 + s, s % 10 == 9 ? 1 : kChunkTokens, {}};
    const int64_t blocks = (stream.cached + stream.chunk + kBlock - 1) / kBlock;
    for (int64_t b = 0; b < blocks; ++b) stream.block_table.push_back(next_block++);
    streams.push_back(stream);
  }
  return streams;
}

int64_t TokenAt(int64_t s, int64_t position) { return (s * 131 + position * 17) % 450 + 3; }

// The logits of every chunk row after the contexts were prefilled, from `model` on its device;
// `tile_rows` receives the tallest kernel tile of the chunk step (0 without kernel tiles).
at::Tensor ChunkLogits(const Qwen2AudioModel& model, int64_t* tile_rows) {
  const Decoder& decoder = model.decoder();
  const std::vector<Stream> streams = Streams();
  int64_t blocks = 0;
  for (const Stream& s : streams) blocks += static_cast<int64_t>(s.block_table.size());
  KvPool kv(model.config().text, blocks, kBlock, decoder.dtype(), decoder.device());
  const auto on_device = at::TensorOptions().dtype(at::kLong).device(decoder.device());
  for (const bool chunk_step : {false, true}) {
    DecoderBatch batch;
    std::vector<int64_t> ids;
    for (int64_t s = 0; s < kSequences; ++s) {
      const Stream& stream = streams[s];
      const int64_t first = chunk_step ? stream.cached : 0;
      const int64_t count = chunk_step ? stream.chunk : stream.cached;
      batch.sequences.push_back(DecoderSequence{count, first, stream.block_table});
      for (int64_t p = first; p < first + count; ++p) ids.push_back(TokenAt(s, p));
    }
    batch.Prepare(kBlock, decoder.device(), decoder.attention_format());
    const at::Tensor hidden =
        decoder.Forward(decoder.Embed(at::tensor(ids, on_device)), batch, &kv);
    if (chunk_step) {
      *tile_rows = batch.kernel_tile_rows;
      return decoder.Logits(hidden).to(at::kFloat).cpu();
    }
  }
  return at::Tensor();
}

class ChunkPrefillGpuTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device (or a CPU libtorch)";
  }
};

TEST_P(ChunkPrefillGpuTest, ChunkRowsMatchTheCpuDecoder) {
  c10::InferenceMode guard;
  auto reference = Qwen2AudioModel::Load(GoldenFixture::Directory() + "/model", RuntimeOptions{});
  ASSERT_TRUE(reference.ok()) << reference.status();
  RuntimeOptions options;
  options.device = "cuda:0";
  options.dtype = GetParam();
  auto model = Qwen2AudioModel::Load(GoldenFixture::Directory() + "/model", options);
  ASSERT_TRUE(model.ok()) << model.status();

  int64_t cpu_tiles = 0, tile_rows = 0;
  const at::Tensor expected = ChunkLogits(**reference, &cpu_tiles);
  const at::Tensor got = ChunkLogits(**model, &tile_rows);
  const TensorErrors errors = Compare(got, expected);
  const AttentionFormat format = (*model)->decoder().attention_format();
  const bool tensor_cores = DecoderBatch::KernelTileRows(at::Device("cuda:0"), format) ==
                            DecoderBatch::kMaxTensorCoreTileRows;
  std::printf(
      "%s, %lld chunk rows, tiles of up to %lld rows%s: logits relative error %.3g, max abs "
      "%.3g\n",
      GetParam().c_str(), static_cast<long long>(got.size(0)), static_cast<long long>(tile_rows),
      tensor_cores ? " (tensor cores)" : "", errors.relative, errors.max_abs);
  EXPECT_EQ(got.sizes(), expected.sizes());
  EXPECT_LE(errors.relative, GetParam() == "float32" ? 1e-4 : 3e-2);
  // With the kernels on, the chunk step's rows went to the kernel in tiles; tall ones where the
  // tensor-core kernel takes them (the launcher runs them there: 135 tiles x 4 heads >= 512).
  if (CudaKernelsEnabled(at::Device("cuda:0"))) {
    // No tiles when the chunks leave the kernel (SPEECHLLM_MAX_KERNEL_QUERY) or tiles are off.
    int64_t expected = tensor_cores ? kChunkTokens : DecoderBatch::TileRows();
    if (DecoderBatch::MaxKernelQuery() < kChunkTokens || expected < 2) expected = 0;
    EXPECT_EQ(tile_rows, expected);
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, ChunkPrefillGpuTest, ::testing::Values("float32", "bfloat16"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace speechllm::engine
