// DecodeGraphs (engine/model/decode_graphs.h). On every machine: the batch buckets and the padded
// host inputs of a replay (layout, padding rows in the scratch block, errors). On a GPU with the
// CUDA libtorch (the gpu.* tests; they skip elsewhere): the tiny golden model decodes several steps
// of three, one and four sequences through the graphs and eagerly, in float32 and bfloat16, and
// the logits, the greedy tokens and the KV pools must agree.
#include "engine/model/decode_graphs.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <string>
#include <vector>

#include "engine/model/qwen2_audio_model.h"
#include "gtest/gtest.h"
#include "tests/model/golden_fixture.h"

namespace speechllm::engine {
namespace {

using speechllm::testing::Compare;
using speechllm::testing::GoldenFixture;
using speechllm::testing::TensorErrors;

TEST(DecodeGraphBucketsTest, DoublesToEightThenStepsAndEndsAtTheMaximum) {
  EXPECT_EQ(DecodeGraphBuckets(0), std::vector<int64_t>{});
  EXPECT_EQ(DecodeGraphBuckets(1), std::vector<int64_t>{1});
  EXPECT_EQ(DecodeGraphBuckets(6), (std::vector<int64_t>{1, 2, 4, 6}));
  EXPECT_EQ(DecodeGraphBuckets(64), (std::vector<int64_t>{1, 2, 4, 8, 16, 24, 32, 40, 48, 56, 64}));
  const std::vector<int64_t> large = DecodeGraphBuckets(150);
  EXPECT_EQ(std::vector<int64_t>(large.end() - 6, large.end()),
            (std::vector<int64_t>{64, 80, 96, 112, 128, 150}));
}

TEST(DecodeGraphInputsTest, PadsRowsIntoTheScratchBlock) {
  // Block size 4, tables 3 wide, scratch block 9: sequence 0 at position 5 (blocks 7, 2), sequence
  // 1 at position 0 (block 4); bucket 4, so rows 2 and 3 are padding.
  const std::vector<DecoderSequence> sequences = {{1, 5, {7, 2}}, {1, 0, {4, 8}}};
  DecodeGraphInputs in;
  ASSERT_TRUE(BuildDecodeGraphInputs({11, 22}, sequences, 4, 3, 4, 9, &in).ok());
  EXPECT_EQ(in.longs, (std::vector<int64_t>{11, 22, 0, 0,                 // token ids
                                            5, 0, 0, 0,                   // positions
                                            2 * 4 + 1, 4 * 4, 36, 36}));  // slots
  EXPECT_EQ(in.ints, (std::vector<int32_t>{0, 1, 2, 3,  // block-table row of each row
                                           5, 0, 0, 0,  // row positions
                                           7, 2, 0, 4, 0, 0, 9, 0, 0, 9, 0, 0}));
}

TEST(DecodeGraphInputsTest, RefusesStepsThatDoNotFit) {
  DecodeGraphInputs in;
  EXPECT_FALSE(BuildDecodeGraphInputs({1}, {{2, 0, {0}}}, 1, 2, 4, 9, &in).ok());        // 2 tokens
  EXPECT_FALSE(BuildDecodeGraphInputs({1}, {{1, 8, {0, 1, 2}}}, 1, 2, 4, 9, &in).ok());  // wide
  EXPECT_FALSE(BuildDecodeGraphInputs({1}, {{1, 4, {0}}}, 1, 2, 4, 9, &in).ok());  // short table
  EXPECT_FALSE(BuildDecodeGraphInputs({1, 2}, {{1, 0, {0}}, {1, 0, {1}}}, 1, 2, 4, 9, &in).ok());
  EXPECT_FALSE(BuildDecodeGraphInputs({1, 2}, {{1, 0, {0}}}, 2, 2, 4, 9, &in).ok());  // ids
}

TEST(DecodeGraphsTest, TheCpuIsNeverSupported) {
  EXPECT_FALSE(DecodeGraphs::Supported(at::Device(at::kCPU)));
}

class DecodeGraphsGpuTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device (or a CPU libtorch)";
    c10::InferenceMode guard;
    if (!DecodeGraphs::Supported(at::Device("cuda:0")))
      GTEST_SKIP() << "this build or environment has no CUDA graphs";
  }
};

TEST_P(DecodeGraphsGpuTest, ReplaysMatchTheEagerDecoder) {
  c10::InferenceMode guard;
  RuntimeOptions options;
  options.device = "cuda:0";
  options.dtype = GetParam();
  auto model = Qwen2AudioModel::Load(GoldenFixture::Directory() + "/model", options);
  ASSERT_TRUE(model.ok()) << model.status();
  const Decoder& decoder = (*model)->decoder();
  const TextConfig& text = (*model)->config().text;
  constexpr int64_t kBlock = 4, kBlocksPerSequence = 8, kSequences = 4;
  const int64_t blocks = kSequences * kBlocksPerSequence;
  KvPool eager_kv(text, blocks + 1, kBlock, decoder.dtype(), decoder.device());
  KvPool graph_kv(text, blocks + 1, kBlock, decoder.dtype(), decoder.device());
  DecodeGraphs graphs(&decoder, &graph_kv, /*scratch_block=*/blocks, kBlocksPerSequence,
                      /*max_batch=*/kSequences);
  const absl::Status captured = graphs.CaptureAll();
  ASSERT_TRUE(captured.ok()) << captured;
  EXPECT_EQ(graphs.num_graphs(), 3);  // buckets 1, 2, 4

  // Prompts of 5, 9, 14 and 2 tokens (block tables interleaved), prefilled into both pools.
  const std::vector<int64_t> lengths = {5, 9, 14, 2};
  std::vector<DecoderSequence> sequences;
  std::vector<int64_t> prompt_ids, next_ids;
  for (int64_t s = 0; s < kSequences; ++s) {
    DecoderSequence sequence{lengths[s], 0, {}};
    for (int64_t j = 0; j < kBlocksPerSequence; ++j)
      sequence.block_table.push_back(j * kSequences + s);
    sequences.push_back(sequence);
    for (int64_t i = 0; i < lengths[s]; ++i) prompt_ids.push_back((s * 131 + i * 17) % 450 + 3);
    next_ids.push_back(prompt_ids.back());
  }
  const auto on_device = at::TensorOptions().dtype(at::kLong).device(decoder.device());
  for (KvPool* kv : {&eager_kv, &graph_kv}) {
    DecoderBatch prefill;
    prefill.sequences = sequences;
    prefill.Prepare(kBlock, decoder.device(), decoder.attention_format());
    decoder.Forward(decoder.Embed(at::tensor(prompt_ids, on_device)), prefill, kv);
  }

  const double tolerance = GetParam() == "float32" ? 1e-4 : 3e-2;
  // Steps over sequences {0,1,2} (bucket 4 with a padding row), {3} (bucket 1), all four.
  const std::vector<std::vector<int64_t>> steps = {{0, 1, 2},    {0, 1, 2},    {3},
                                                   {0, 1, 2, 3}, {0, 1, 2, 3}, {1, 2}};
  for (size_t step = 0; step < steps.size(); ++step) {
    std::vector<DecoderSequence> rows;
    std::vector<int64_t> ids;
    for (int64_t s : steps[step]) {
      rows.push_back(DecoderSequence{1, sequences[s].start_position + sequences[s].num_new_tokens,
                                     sequences[s].block_table});
      ids.push_back(next_ids[s]);
    }
    DecoderBatch batch;
    batch.sequences = rows;
    batch.Prepare(kBlock, decoder.device(), decoder.attention_format());
    const at::Tensor eager =
        decoder.Logits(decoder.Forward(decoder.Embed(at::tensor(ids, on_device)), batch, &eager_kv))
            .to(at::kFloat)
            .cpu();
    ASSERT_TRUE(graphs.Accepts(rows));
    const at::Tensor replayed = graphs.Run(ids, rows).to(at::kFloat).cpu();
    const TensorErrors errors = Compare(replayed, eager);
    std::printf("%s step %zu (%zu sequences): logits relative error %.3g, max abs %.3g\n",
                GetParam().c_str(), step, rows.size(), errors.relative, errors.max_abs);
    EXPECT_LE(errors.relative, tolerance);
    const at::Tensor eager_tokens = eager.argmax(-1), replayed_tokens = replayed.argmax(-1);
    if (GetParam() == "float32") {
      EXPECT_TRUE(eager_tokens.equal(replayed_tokens));
    }
    for (size_t i = 0; i < steps[step].size(); ++i) {
      const int64_t s = steps[step][i];
      sequences[s].start_position += sequences[s].num_new_tokens;
      sequences[s].num_new_tokens = 1;
      next_ids[s] = eager_tokens[static_cast<int64_t>(i)].item<int64_t>();
    }
  }
  // The KV written by the replays equals the eager one everywhere but the scratch block.
  for (int layer = 0; layer < text.num_layers; ++layer) {
    const int64_t slots = blocks * kBlock;
    const TensorErrors keys = Compare(graph_kv.keys(layer).narrow(0, 0, slots).to(at::kFloat),
                                      eager_kv.keys(layer).narrow(0, 0, slots).to(at::kFloat));
    const TensorErrors values = Compare(graph_kv.values(layer).narrow(0, 0, slots).to(at::kFloat),
                                        eager_kv.values(layer).narrow(0, 0, slots).to(at::kFloat));
    std::printf("layer %d KV relative error: keys %.3g, values %.3g\n", layer, keys.relative,
                values.relative);
    EXPECT_LE(keys.relative, tolerance);
    EXPECT_LE(values.relative, tolerance);
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, DecodeGraphsGpuTest, ::testing::Values("float32", "bfloat16"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace speechllm::engine
