// Block-incremental encoding and the streaming engine on the tiny fixture model (label model): conv
// outputs of every chunking equal the offline conv stem, one chunk covering the segment equals the
// offline encoder, streamed segments finalized in exact mode give Hugging Face's greedy tokens, and
// so do Hugging Face's projector outputs given as precomputed embeddings.
#include <c10/core/InferenceMode.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <optional>

#include "engine/engine.h"
#include "engine/io/wav_reader.h"
#include "engine/model/audio_lengths.h"
#include "engine/model/decode_graphs.h"
#include "engine/model/qwen2_audio_model.h"
#include "engine/model/safetensors.h"
#include "engine/torch_model_runner.h"
#include "gtest/gtest.h"
#include "tests/model/golden_fixture.h"
#include "tests/test_util.h"

namespace speechllm::engine {
namespace {

using speechllm::testing::Compare;
using speechllm::testing::GoldenDir;

const std::vector<int64_t> kPrefix = {1, 2, 3, 501};
const std::vector<int64_t> kSuffix = {502, 10, 11, 12};

std::vector<float> Clip(const std::string& name) {
  auto samples = ReadMonoWavFile(GoldenDir() + "/" + name + ".wav", 16000);
  EXPECT_TRUE(samples.ok()) << samples.status();
  return *samples;
}

// Valid-prefix features, frame-major.
struct FrameMajor {
  std::vector<float> values;
  int64_t num_frames = 0, num_valid_frames = 0;
};
FrameMajor Features(const LogMel& log_mel, const std::vector<float>& clip) {
  const LogMelFeatures f = *log_mel.ExtractValidPrefix(clip);
  FrameMajor out{std::vector<float>(f.values.size()), f.num_frames, f.num_valid_frames};
  for (int64_t t = 0; t < f.num_frames; ++t) {
    for (int64_t m = 0; m < f.num_mel_bins; ++m)
      out.values[t * f.num_mel_bins + m] = f.values[m * f.num_frames + t];
  }
  return out;
}

// The frames a block [first, end) needs (see EncoderChunk), frame-major.
std::vector<float> BlockFrames(const FrameMajor& features, int64_t first, int64_t end,
                               int64_t mels) {
  const int64_t begin_frame = first == 0 ? 0 : 2 * first - 2;
  return std::vector<float>(features.values.begin() + begin_frame * mels,
                            features.values.begin() + (2 * end + 1) * mels);
}

at::Tensor ToMel(const std::vector<float>& frames, int64_t mels) {
  return at::tensor(frames).view({-1, mels}).transpose(0, 1);
}

class EngineModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto model = Qwen2AudioModel::Load(GoldenDir() + "/model", RuntimeOptions{});
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(model).value().release();
  }
  static Qwen2AudioModel* model_;
  c10::InferenceMode inference_mode_;
};
Qwen2AudioModel* EngineModelTest::model_ = nullptr;

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

// An engine over the fixture model with `num_kv_blocks` KV blocks (null, with the failure recorded,
// if the model does not load).
std::unique_ptr<Engine> MakeEngine(int64_t num_kv_blocks,
                                   std::optional<bool> batched_encoder = std::nullopt,
                                   const std::string& device = "cpu") {
  TorchRunnerConfig runner_config;
  runner_config.num_kv_blocks = num_kv_blocks;
  runner_config.batched_encoder = batched_encoder;
  runner_config.runtime.device = device;
  runner_config.runtime.dtype = "float32";
  auto runner = TorchModelRunner::Create(GoldenDir() + "/model", runner_config);
  if (!runner.ok()) {
    ADD_FAILURE() << runner.status();
    return nullptr;
  }
  if (device != "cpu") std::printf("%s\n", (*runner)->decode_graphs_summary().c_str());
  EngineConfig config;
  config.max_prefix_tokens = 8;
  config.max_suffix_tokens = 8;
  config.max_audio_tokens_per_segment = 200;
  return std::make_unique<Engine>(config, std::move(runner).value());
}

// Released sequences free their KV blocks on the engine thread: waits up to one second for that.
void WaitForFreeKvBlocks(const Engine& engine) {
  for (int wait = 0; wait < 50 && engine.stats().kv_blocks_used > 0; ++wait)
    absl::SleepFor(absl::Milliseconds(20));
}

SequenceConfig TwentyFourTokens() {
  SequenceConfig config;
  config.max_new_tokens_per_segment = 24;
  config.max_new_tokens_per_update = 8;
  return config;
}

// Streams both clips at once through the Engine: chunks of `chunk_positions`, then a final.
std::map<SequenceId, std::vector<SequenceOutput>> StreamClips(
    Engine* engine, const LogMel& log_mel, int64_t chunk_positions, FinalMode mode,
    int num_streams = 2, const SequenceConfig& base = TwentyFourTokens()) {
  std::map<SequenceId, std::vector<SequenceOutput>> outputs;
  std::map<SequenceId, std::string> clip_of;
  for (int stream = 0; stream < num_streams; ++stream) {
    const char* name = stream % 2 == 0 ? "clip_a" : "clip_b";
    SequenceConfig config = base;
    config.final_mode = mode;
    auto id = engine->AddSequence(config);
    EXPECT_TRUE(id.ok()) << id.status();
    clip_of[*id] = name;
    EXPECT_TRUE(engine->StartSegment(*id, SegmentStart{0, kPrefix, kSuffix}).ok());
  }
  std::map<SequenceId, FrameMajor> features_of;
  for (const auto& [id, name] : clip_of) {
    const FrameMajor& features = features_of[id] = Features(log_mel, Clip(name));
    const int64_t conv_positions = ConvOutputLength(features.num_valid_frames);
    for (int64_t first = 0; first + chunk_positions <= conv_positions; first += chunk_positions) {
      auto chunk = std::make_unique<EncoderChunk>();
      chunk->first_position = first;
      chunk->end_position = first + chunk_positions;
      chunk->frames = BlockFrames(features, first, chunk->end_position, 128);
      EXPECT_TRUE(engine->SubmitChunk(id, std::move(chunk)).ok());
    }
  }
  // A segment end supersedes queued chunks, so wait for partials before ending the segments.
  for (int wait = 0; wait < 600 && outputs.size() < clip_of.size(); ++wait) {
    for (SequenceOutput& output : engine->PopOutputs(absl::Milliseconds(100))) {
      EXPECT_TRUE(output.status.ok()) << output.status;
      outputs[output.id].push_back(std::move(output));
    }
  }
  for (const auto& [id, name] : clip_of) {
    const FrameMajor& features = features_of[id];
    const int64_t conv_positions = ConvOutputLength(features.num_valid_frames);
    const int64_t first = conv_positions / chunk_positions * chunk_positions;
    auto end = std::make_unique<SegmentEnd>();
    end->features = features.values;
    end->num_frames = features.num_frames;
    end->num_valid_frames = features.num_valid_frames;
    end->tail.first_position = first;
    end->tail.end_position = conv_positions;
    if (conv_positions > first)
      end->tail.frames = BlockFrames(features, first, conv_positions, 128);
    EXPECT_TRUE(engine->EndSegment(id, std::move(end)).ok());
  }
  int finals = 0;
  for (int wait = 0; wait < 600 && finals < num_streams; ++wait) {
    for (SequenceOutput& output : engine->PopOutputs(absl::Milliseconds(100))) {
      EXPECT_TRUE(output.status.ok()) << output.status;
      finals += output.is_final;
      outputs[output.id].push_back(std::move(output));
    }
  }
  EXPECT_EQ(finals, num_streams);
  for (const auto& [id, name] : clip_of) engine->Release(id);
  return outputs;
}

std::vector<int64_t> Golden(const std::string& key) {
  auto golden = SafetensorsFile::Open(GoldenDir() + "/golden.safetensors");
  return *(*golden)->Get(key)->ToInt64();
}

TEST_F(EngineModelTest, StreamedExactFinalsEqualHuggingFaceGreedy) {
  std::unique_ptr<Engine> engine = MakeEngine(/*num_kv_blocks=*/64);
  ASSERT_NE(engine, nullptr);
  for (int64_t chunk_positions : {10, 50}) {
    const auto outputs =
        StreamClips(engine.get(), model_->log_mel(), chunk_positions, FinalMode::kExact);
    ASSERT_EQ(outputs.size(), 2u);
    const std::vector<int64_t> goldens[] = {Golden("greedy_a"), Golden("greedy_b")};
    int index = 0;
    for (const auto& [id, list] : outputs) {
      ASSERT_FALSE(list.empty());
      EXPECT_TRUE(list.back().is_final);
      EXPECT_EQ(list.back().token_ids, goldens[index])
          << "clip " << index << ", chunk " << chunk_positions;
      std::printf("chunk %lld positions: clip %d: %zu partials, final %s HF greedy\n",
                  static_cast<long long>(chunk_positions), index, list.size() - 1,
                  list.back().token_ids == goldens[index] ? "equals" : "differs from");
      EXPECT_GE(list.size(), 2u) << "expected partial updates before the final";
      ++index;
    }
  }
  // Every KV block is free again once the sequences are released.
  WaitForFreeKvBlocks(*engine);
  EXPECT_EQ(engine->stats().kv_blocks_used, 0);
  EXPECT_EQ(engine->stats().kv_blocks_reserved, 0);
}

// The random-weight fixture model loops (greedy_b is 355 and then 227 for ever). With the
// repetition guard the loop is cut after its first copy, in partials and in the exact final, and
// decoding stops; without it the final runs to the token limit.
TEST_F(EngineModelTest, RepetitionGuardCutsTheFixtureLoops) {
  std::unique_ptr<Engine> engine = MakeEngine(/*num_kv_blocks=*/64);
  ASSERT_NE(engine, nullptr);
  SequenceConfig config;
  config.max_new_tokens_per_segment = 64;
  config.max_new_tokens_per_update = 8;
  const std::vector<int64_t> goldens[] = {Golden("greedy_a"), Golden("greedy_b")};
  const auto unguarded =
      StreamClips(engine.get(), model_->log_mel(), 50, FinalMode::kExact, 2, config);
  config.repetition_guard.min_loop_tokens = 8;
  const auto guarded =
      StreamClips(engine.get(), model_->log_mel(), 50, FinalMode::kExact, 2, config);
  ASSERT_EQ(unguarded.size(), 2u);
  ASSERT_EQ(guarded.size(), 2u);
  // HF greedy up to the first 227 of the loop: clip_a's loop starts at token 9, clip_b's at 1.
  const size_t loop_starts[] = {9, 1};
  int index = 0;
  for (auto it = unguarded.begin(), jt = guarded.begin(); it != unguarded.end(); ++it, ++jt) {
    const SequenceOutput& plain = it->second.back();
    const SequenceOutput& cut = jt->second.back();
    ASSERT_TRUE(plain.is_final && cut.is_final);
    ASSERT_EQ(plain.token_ids.size(), 64u) << "the fixture model has no stop token";
    EXPECT_TRUE(std::equal(goldens[index].begin(), goldens[index].end(), plain.token_ids.begin()));
    EXPECT_EQ(plain.repeated_tokens_cut, 0);
    const std::vector<int64_t> expected(goldens[index].begin(),
                                        goldens[index].begin() + loop_starts[index] + 1);
    EXPECT_EQ(cut.token_ids, expected) << "clip " << index;
    EXPECT_EQ(cut.repeated_tokens_cut, 7) << "found once 8 copies of 227 span 8 tokens";
    int cut_partials = 0;
    for (const SequenceOutput& partial : jt->second) {
      ASSERT_TRUE(partial.status.ok());
      EXPECT_FALSE(FindLoopCut(partial.token_ids, config.repetition_guard).has_value())
          << "no output ends in a loop the guard finds";
      cut_partials += !partial.is_final && partial.repeated_tokens_cut > 0;
    }
    std::printf("clip %d: final %zu tokens unguarded, %zu guarded (%lld cut); %d partials cut\n",
                index, plain.token_ids.size(), cut.token_ids.size(),
                static_cast<long long>(cut.repeated_tokens_cut), cut_partials);
    ++index;
  }
  WaitForFreeKvBlocks(*engine);
  EXPECT_EQ(engine->stats().kv_blocks_used, 0);
}

// A chunk of one encoder position adds no audio token (pooling pairs). Without partials its step
// had nothing to prefill, and the decoder took the empty batch for a PagedAttention batch: the
// stream failed with INTERNAL ("expected scalar type Int"). Now the final comes as usual.
TEST_F(EngineModelTest, AChunkWithoutAWholeAudioTokenIsNoFailure) {
  std::unique_ptr<Engine> engine = MakeEngine(/*num_kv_blocks=*/64);
  ASSERT_NE(engine, nullptr);
  SequenceConfig config;
  config.final_mode = FinalMode::kFast;
  config.partial_updates = false;
  config.max_new_tokens_per_segment = 24;
  auto id = engine->AddSequence(config);
  ASSERT_TRUE(id.ok()) << id.status();
  ASSERT_TRUE(engine->StartSegment(*id, SegmentStart{0, kPrefix, kSuffix}).ok());
  const FrameMajor features = Features(model_->log_mel(), Clip("clip_a"));
  for (auto [first, end] : std::vector<std::pair<int64_t, int64_t>>{{0, 10}, {10, 11}}) {
    auto chunk = std::make_unique<EncoderChunk>();
    chunk->first_position = first;
    chunk->end_position = end;
    chunk->frames = BlockFrames(features, first, end, 128);
    // Each chunk its own step (a segment end queued with them would take them into the final).
    const int64_t steps_before = engine->stats().steps;
    ASSERT_TRUE(engine->SubmitChunk(*id, std::move(chunk)).ok());
    for (int wait = 0; wait < 200 && engine->stats().steps == steps_before; ++wait)
      absl::SleepFor(absl::Milliseconds(10));
    ASSERT_GT(engine->stats().steps, steps_before);
  }
  auto end = std::make_unique<SegmentEnd>();
  end->features = features.values;
  end->num_frames = features.num_frames;
  end->num_valid_frames = features.num_valid_frames;
  end->tail.first_position = end->tail.end_position = 11;
  ASSERT_TRUE(engine->EndSegment(*id, std::move(end)).ok());
  std::vector<SequenceOutput> outputs;
  for (int wait = 0; wait < 100 && (outputs.empty() || !outputs.back().is_final); ++wait) {
    for (SequenceOutput& output : engine->PopOutputs(absl::Milliseconds(100)))
      outputs.push_back(std::move(output));
  }
  ASSERT_FALSE(outputs.empty());
  EXPECT_TRUE(outputs.back().status.ok()) << outputs.back().status;
  EXPECT_TRUE(outputs.back().is_final);
  EXPECT_FALSE(outputs.back().token_ids.empty());
  engine->Release(*id);
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
  auto golden = SafetensorsFile::Open(GoldenDir() + "/golden.safetensors");
  ASSERT_TRUE(golden.ok()) << golden.status();
  std::map<SequenceId, std::string> expected_of;
  for (const std::string input : {"features_a", "embeddings_b", "embeddings_a"}) {
    const std::string letter = input.substr(input.size() - 1);
    SequenceConfig config;
    config.max_new_tokens_per_segment = 24;
    config.partial_updates = false;
    auto id = engine->AddSequence(config);
    ASSERT_TRUE(id.ok()) << id.status();
    expected_of[*id] = "greedy_" + letter;
    ASSERT_TRUE(engine->StartSegment(*id, SegmentStart{0, kPrefix, kSuffix}).ok());
    auto end = std::make_unique<SegmentEnd>();
    if (input.rfind("features", 0) == 0) {
      const FrameMajor features = Features(model_->log_mel(), Clip("clip_" + letter));
      end->features = features.values;
      end->num_frames = features.num_frames;
      end->num_valid_frames = features.num_valid_frames;
    } else {
      auto view = (*golden)->Get("audio_embeds_" + letter);
      ASSERT_TRUE(view.ok()) << view.status();
      end->audio_embeddings = view->ToFloat32();
      end->num_audio_embeddings = view->shape[0];
    }
    ASSERT_TRUE(engine->EndSegment(*id, std::move(end)).ok());
  }
  int finals = 0;
  for (int wait = 0; wait < 600 && finals < 3; ++wait) {
    for (SequenceOutput& output : engine->PopOutputs(absl::Milliseconds(100))) {
      ASSERT_TRUE(output.status.ok()) << output.status;
      ASSERT_TRUE(output.is_final);
      ++finals;
      const std::string& key = expected_of[output.id];
      EXPECT_EQ(output.token_ids, Golden(key)) << key;
      std::printf("sequence %lld (%s): final %s HF greedy\n", static_cast<long long>(output.id),
                  key.c_str(), output.token_ids == Golden(key) ? "equals" : "differs from");
    }
  }
  EXPECT_EQ(finals, 3);
  for (const auto& [id, key] : expected_of) engine->Release(id);
  WaitForFreeKvBlocks(*engine);
  EXPECT_EQ(engine->stats().kv_blocks_used, 0);
}

// Eight streams at once (several chunks of different sequences in each batched step): every exact
// final still equals Hugging Face's greedy tokens.
TEST_F(EngineModelTest, EightConcurrentStreamsKeepExactFinals) {
  std::unique_ptr<Engine> engine = MakeEngine(/*num_kv_blocks=*/256);
  ASSERT_NE(engine, nullptr);
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
  if (DecodeGraphs::Supported(at::Device(at::kCUDA, 0))) {
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
