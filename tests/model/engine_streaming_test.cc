// Block-incremental encoding and the streaming engine on the tiny fixture model (label model): conv
// outputs of every chunking equal the offline conv stem, one chunk covering the segment equals the
// offline encoder, streamed segments finalized in exact mode give Hugging Face's greedy tokens, and
// so do Hugging Face's projector outputs given as precomputed embeddings.
#include <c10/core/InferenceMode.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <optional>

#include "engine/model/decode_graphs.h"
#include "tests/model/engine_model_fixture.h"
#include "tests/model/golden_fixture.h"

namespace speechllm::engine {
namespace {

using speechllm::testing::Compare;

TEST_F(EngineModelTest, BlockConvOutputsEqualTheOfflineConvStem) {
  const int64_t mels = 128;
  for (const char* name : {"clip_a", "clip_b"}) {
    const FrameMajor features = Features(model_->log_mel(), Clip(name));
    const at::Tensor offline = model_->encoder().ConvStemOf(ToMel(features.values, mels));
    const int64_t conv_positions = ConvOutputLength(features.num_valid_frames);
    for (int64_t chunk_positions : {2, 10, 16, 50, 160}) {
      double max_error = 0;
      for (int64_t first = 0; first < conv_positions; first += chunk_positions) {
        const int64_t end = std::min(first + chunk_positions, conv_positions);
        const at::Tensor block = model_->encoder().ConvBlock(
            ToMel(BlockFrames(features, first, end, mels), mels), first, end);
        max_error =
            std::max(max_error, Compare(block, offline.narrow(0, first, end - first)).max_abs);
      }
      std::printf("%s, %lld positions per chunk: conv max |err| vs offline %.3g\n", name,
                  static_cast<long long>(chunk_positions), max_error);
      EXPECT_LE(max_error, 1e-5);
    }
  }
}

TEST_F(EngineModelTest, OneBlockOverTheWholeSegmentEqualsTheOfflineEncoder) {
  const int64_t mels = 128;
  const FrameMajor features = Features(model_->log_mel(), Clip("clip_a"));
  const int64_t conv_positions = ConvOutputLength(features.num_valid_frames);
  EncoderKvCache cache;
  const at::Tensor block = model_->encoder().EncodeBlock(
      ToMel(BlockFrames(features, 0, conv_positions, mels), mels), 0, conv_positions, &cache);
  const at::Tensor offline =
      model_->encoder().EncodeValidPrefix(ToMel(features.values, mels), features.num_valid_frames);
  const auto errors = Compare(block, offline);
  std::printf("one block vs offline encoder: relative %.3g\n", errors.relative);
  EXPECT_LE(errors.relative, 1e-5);
  EXPECT_EQ(cache.num_positions, conv_positions);
}

TEST_F(EngineModelTest, StreamedExactFinalsEqualHuggingFaceGreedy) {
  std::unique_ptr<Engine> engine = MakeEngine(/*num_kv_blocks=*/64);
  ASSERT_NE(engine, nullptr);
  for (int64_t chunk_positions : {10, 50}) {
    const auto outputs =
        StreamExactFinalsExpectingGolden(engine.get(), model_->log_mel(), chunk_positions);
    for (const auto& [id, list] : outputs)
      EXPECT_GE(list.size(), 2u) << "expected partial updates before the final";
  }
  // Every KV block is free again once the sequences are released.
  WaitForFreeKvBlocks(*engine);
  EXPECT_EQ(engine->stats().kv_blocks_used, 0);
  EXPECT_EQ(engine->stats().kv_blocks_reserved, 0);
  // The encoder K/V the partials cached were counted (2 layers x K and V x 64 floats a position)
  // and are gone with the sequences, as is their reservation.
  const EngineStats stats = engine->stats();
  std::printf("encoder K/V: %lld bytes a position, peak %lld of %lld positions\n",
              static_cast<long long>(stats.encoder_kv_bytes_per_position),
              static_cast<long long>(stats.encoder_kv_positions_peak),
              static_cast<long long>(stats.encoder_kv_positions_total));
  EXPECT_EQ(stats.encoder_kv_bytes_per_position, 2 * 2 * 64 * 4);
  EXPECT_GT(stats.encoder_kv_positions_peak, 0);
  EXPECT_LE(stats.encoder_kv_positions_peak, stats.encoder_kv_positions_total);
  EXPECT_EQ(stats.encoder_kv_positions_used, 0);
  EXPECT_EQ(stats.encoder_kv_positions_reserved, 0);
}

TEST_F(EngineModelTest, FastFinalsDecodeTheBlockEmbeddings) {
  std::unique_ptr<Engine> engine = MakeEngine(/*num_kv_blocks=*/64);
  ASSERT_NE(engine, nullptr);
  const auto outputs = StreamClips(engine.get(), model_->log_mel(), 50, FinalMode::kFast);
  for (const auto& [id, list] : outputs) {
    ASSERT_FALSE(list.empty());
    EXPECT_TRUE(list.back().is_final);
    EXPECT_EQ(list.back().token_ids.size(), 24u);
  }
}

// Recognize's AudioEmbeddings input: Hugging Face's own projector outputs of the fixture
// (audio_embeds_a/b) in place of the encoder give its greedy tokens, also when a sequence with
// features shares the step with them (precomputed and encoded items in one Encode call).
TEST_F(EngineModelTest, PrecomputedEmbeddingsGiveHuggingFaceGreedy) {
  std::unique_ptr<Engine> engine = MakeEngine(/*num_kv_blocks=*/128);
  ASSERT_NE(engine, nullptr);
  ExpectOfflineFinalsEqualGolden(engine.get(), model_->log_mel(),
                                 {"features_a", "embeddings_b", "embeddings_a"});
}

// Eight streams at once (several chunks of different sequences in each batched step): every exact
// final still equals Hugging Face's greedy tokens. The steps report the read of their choices as a
// part of their decoder time, and steps that only encode report none.
TEST_F(EngineModelTest, EightConcurrentStreamsKeepExactFinals) {
  std::unique_ptr<Engine> engine = MakeEngine(/*num_kv_blocks=*/256);
  ASSERT_NE(engine, nullptr);
  struct WaitChecker : StepObserver {  // OnStep runs on the engine loop thread
    void OnStep(const StepRecord& step) override {
      if (!step.ok) return;
      ++steps;
      waited += step.wait_time > absl::ZeroDuration();
      bad += step.sequences > 0
                 ? step.wait_time < absl::ZeroDuration() || step.wait_time > step.decoder_time
                 : step.wait_time != absl::ZeroDuration();
    }
    std::atomic<int64_t> steps{0}, waited{0}, bad{0};
  } checker;
  engine->SetStepObserver(&checker);
  const auto outputs =
      StreamClips(engine.get(), model_->log_mel(), 10, FinalMode::kExact, /*num_streams=*/8);
  ASSERT_EQ(outputs.size(), 8u);
  const std::vector<int64_t> goldens[] = {Golden("greedy_a"), Golden("greedy_b")};
  int index = 0, equal = 0;
  for (const auto& [id, list] : outputs) {
    ASSERT_FALSE(list.empty());
    EXPECT_EQ(list.back().token_ids, goldens[index % 2]) << "stream " << index;
    equal += list.back().token_ids == goldens[index % 2];
    ++index;
  }
  std::printf(
      "8 concurrent streams: %d of 8 exact finals equal HF greedy; %lld steps, mean batch %.2f\n",
      equal, static_cast<long long>(engine->stats().steps),
      static_cast<double>(engine->stats().step_sequences) /
          std::max<int64_t>(1, engine->stats().steps));
  WaitForFreeKvBlocks(*engine);
  EXPECT_EQ(engine->stats().kv_blocks_used, 0);
  engine->Stop();
  engine->SetStepObserver(nullptr);
  EXPECT_GT(checker.waited.load(), 0);
  EXPECT_EQ(checker.bad.load(), 0) << "steps whose wait is not within their decoder time";
}

// The whole CUDA path (label gpu; skips without a device or with a CPU libtorch): eight streams on
// the GPU in float32, through the decode graphs, PagedAttention, the fused layers, the batched
// encoder passes and padded long prefills together, keep every exact final equal to HF greedy.
TEST_F(EngineModelTest, GpuStreamsKeepExactFinals) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device (or a CPU libtorch)";
  std::unique_ptr<Engine> engine = MakeEngine(/*num_kv_blocks=*/256, std::nullopt, "cuda");
  ASSERT_NE(engine, nullptr);
  struct GraphStepCounter : StepObserver {  // OnStep runs on the engine loop thread
    void OnStep(const StepRecord& step) override { ++steps, graph_steps += step.decode_graph; }
    std::atomic<int64_t> steps{0}, graph_steps{0};
  } counter;
  engine->SetStepObserver(&counter);
  for (FinalMode mode : {FinalMode::kExact, FinalMode::kFast}) {
    const auto outputs = StreamClips(engine.get(), model_->log_mel(), 10, mode, /*num_streams=*/8);
    ASSERT_EQ(outputs.size(), 8u);
    const std::vector<int64_t> goldens[] = {Golden("greedy_a"), Golden("greedy_b")};
    int index = 0, equal = 0;
    for (const auto& [id, list] : outputs) {
      ASSERT_FALSE(list.empty());
      EXPECT_TRUE(list.back().is_final);
      if (mode == FinalMode::kExact) {
        EXPECT_EQ(list.back().token_ids, goldens[index % 2]) << "stream " << index;
      } else {
        EXPECT_EQ(list.back().token_ids.size(), 24u) << "stream " << index;
      }
      equal += list.back().token_ids == goldens[index % 2];
      ++index;
    }
    std::printf("CUDA, %s finals: %d of 8 equal HF greedy\n",
                mode == FinalMode::kExact ? "exact" : "fast", equal);
  }
  WaitForFreeKvBlocks(*engine);
  EXPECT_EQ(engine->stats().kv_blocks_used, 0);
  engine->Stop();
  engine->SetStepObserver(nullptr);
  std::printf("CUDA: %lld of %lld steps replayed a decode graph\n",
              static_cast<long long>(counter.graph_steps.load()),
              static_cast<long long>(counter.steps.load()));
  // Eight streams decoding 24 tokens each give decode-only steps: with graphs built, some replay.
  // (Supported() is asked under inference mode, as the runner asks it: the kernels, and so the
  // graphs, are off while autograd records.)
  const bool graphs_supported = [] {
    c10::InferenceMode guard;
    return DecodeGraphs::Supported(at::Device(at::kCUDA, 0));
  }();
  if (graphs_supported) {
    EXPECT_GT(counter.graph_steps.load(), 0);
  }
}

// The batched encoder passes that CUDA runs by default (one im2col conv stem and one padded
// attention per layer for all items of a step), forced on the CPU, for eight streams: exact finals
// (full re-encodes) still equal HF greedy, and fast finals (decoded from the block-mode
// embeddings of every chunk) equal those of item-by-item passes. Finals only: how chunks group
// into steps, and so the partials, depends on timing.
TEST_F(EngineModelTest, BatchedEncoderPassesGiveTheSameFinals) {
  const std::vector<int64_t> goldens[] = {Golden("greedy_a"), Golden("greedy_b")};
  std::vector<std::vector<int64_t>> fast_finals[2];
  for (int batched = 0; batched < 2; ++batched) {
    std::unique_ptr<Engine> engine = MakeEngine(/*num_kv_blocks=*/256, batched == 1);
    ASSERT_NE(engine, nullptr);
    for (FinalMode mode : {FinalMode::kExact, FinalMode::kFast}) {
      const auto outputs =
          StreamClips(engine.get(), model_->log_mel(), 10, mode, /*num_streams=*/8);
      ASSERT_EQ(outputs.size(), 8u);
      int index = 0;
      for (const auto& [id, list] : outputs) {
        ASSERT_FALSE(list.empty());
        ASSERT_TRUE(list.back().is_final);
        if (mode == FinalMode::kExact) {
          EXPECT_EQ(list.back().token_ids, goldens[index % 2])
              << "stream " << index << (batched ? ", batched" : ", item by item");
        } else {
          fast_finals[batched].push_back(list.back().token_ids);
        }
        ++index;
      }
    }
  }
  ASSERT_EQ(fast_finals[0].size(), 8u);
  EXPECT_EQ(fast_finals[0], fast_finals[1]);
  int equal = 0;
  for (size_t i = 0; i < fast_finals[0].size(); ++i)
    equal += fast_finals[0][i] == fast_finals[1][i];
  std::printf(
      "batched encoder: 8 exact finals checked against HF greedy, %d of 8 fast finals "
      "equal to item-by-item passes\n",
      equal);
}

}  // namespace
}  // namespace speechllm::engine
