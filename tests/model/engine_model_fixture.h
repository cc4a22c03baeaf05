// EngineModelTest: the fixture of the engine tests on the tiny golden model (label model): the
// model loaded once per suite, engines over it, clip features in the engine's chunk layout, and
// helpers that stream both clips through an engine or finalize them offline. Test-only; the test
// thread calls everything (the engines run their own loop threads).
#ifndef SPEECHLLM_TESTS_MODEL_ENGINE_MODEL_FIXTURE_H_
#define SPEECHLLM_TESTS_MODEL_ENGINE_MODEL_FIXTURE_H_

#include <c10/core/InferenceMode.h>

#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/io/wav_reader.h"
#include "engine/model/audio_lengths.h"
#include "engine/model/qwen2_audio_model.h"
#include "engine/model/safetensors.h"
#include "engine/torch_model_runner.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace speechllm::engine {

using speechllm::testing::GoldenDir;

inline const std::vector<int64_t> kPrefix = {1, 2, 3, 501};
inline const std::vector<int64_t> kSuffix = {502, 10, 11, 12};

inline std::vector<float> Clip(const std::string& name) {
  auto samples = ReadMonoWavFile(GoldenDir() + "/" + name + ".wav", 16000);
  EXPECT_TRUE(samples.ok()) << samples.status();
  return *samples;
}

// Valid-prefix features, frame-major.
struct FrameMajor {
  std::vector<float> values;
  int64_t num_frames = 0, num_valid_frames = 0;
};
inline FrameMajor Features(const LogMel& log_mel, const std::vector<float>& clip) {
  const LogMelFeatures f = *log_mel.ExtractValidPrefix(clip);
  FrameMajor out{std::vector<float>(f.values.size()), f.num_frames, f.num_valid_frames};
  for (int64_t t = 0; t < f.num_frames; ++t) {
    for (int64_t m = 0; m < f.num_mel_bins; ++m)
      out.values[t * f.num_mel_bins + m] = f.values[m * f.num_frames + t];
  }
  return out;
}

// The frames a block [first, end) needs (see EncoderChunk), frame-major.
inline std::vector<float> BlockFrames(const FrameMajor& features, int64_t first, int64_t end,
                                      int64_t mels) {
  const int64_t begin_frame = first == 0 ? 0 : 2 * first - 2;
  return std::vector<float>(features.values.begin() + begin_frame * mels,
                            features.values.begin() + (2 * end + 1) * mels);
}

inline at::Tensor ToMel(const std::vector<float>& frames, int64_t mels) {
  return at::tensor(frames).view({-1, mels}).transpose(0, 1);
}

class EngineModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto model = Qwen2AudioModel::Load(GoldenDir() + "/model", RuntimeOptions{});
    ASSERT_TRUE(model.ok()) << model.status();
    model_ = std::move(model).value().release();
  }
  static inline Qwen2AudioModel* model_ = nullptr;
  c10::InferenceMode inference_mode_;
};

// An engine over the fixture model with `num_kv_blocks` KV blocks and a step budget of
// `max_step_tokens` (null, with the failure recorded, if the model does not load).
inline std::unique_ptr<Engine> MakeEngine(
    int64_t num_kv_blocks, std::optional<bool> batched_encoder = std::nullopt,
    const std::string& device = "cpu", int64_t max_step_tokens = EngineConfig{}.max_step_tokens) {
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
  if (device != "cpu") std::printf("%s\n", (*runner)->graphs_summary().c_str());
  EngineConfig config;
  config.max_prefix_tokens = 8;
  config.max_suffix_tokens = 8;
  config.max_audio_tokens_per_segment = 200;
  config.max_step_tokens = max_step_tokens;
  return std::make_unique<Engine>(config, std::move(runner).value());
}

// Released sequences free their KV blocks on the engine thread: waits up to one second for that.
inline void WaitForFreeKvBlocks(const Engine& engine) {
  for (int wait = 0; wait < 50 && engine.stats().kv_blocks_used > 0; ++wait)
    absl::SleepFor(absl::Milliseconds(20));
}

inline SequenceConfig TwentyFourTokens() {
  SequenceConfig config;
  config.max_new_tokens_per_segment = 24;
  config.max_new_tokens_per_update = 8;
  return config;
}

// Streams both clips at once through the Engine: chunks of `chunk_positions`, then a final.
inline std::map<SequenceId, std::vector<SequenceOutput>> StreamClips(
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
  // A segment end supersedes queued chunks, so wait for partials before ending the segments
  // (without partials a fast final takes the queued chunks in).
  for (int wait = 0; base.partial_updates && wait < 600 && outputs.size() < clip_of.size();
       ++wait) {
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

inline std::vector<int64_t> Golden(const std::string& key) {
  auto golden = SafetensorsFile::Open(GoldenDir() + "/golden.safetensors");
  return *(*golden)->Get(key)->ToInt64();
}

// Streams both clips through `engine` (chunks of `chunk_positions`, exact finals) and expects each
// final to equal Hugging Face's greedy tokens of its clip; returns the outputs.
inline std::map<SequenceId, std::vector<SequenceOutput>> StreamExactFinalsExpectingGolden(
    Engine* engine, const LogMel& log_mel, int64_t chunk_positions) {
  auto outputs = StreamClips(engine, log_mel, chunk_positions, FinalMode::kExact);
  EXPECT_EQ(outputs.size(), 2u);
  const std::vector<int64_t> goldens[] = {Golden("greedy_a"), Golden("greedy_b")};
  int index = 0;
  for (const auto& [id, list] : outputs) {
    if (list.empty() || index > 1) {
      ADD_FAILURE() << "no output for clip " << index;
      continue;
    }
    EXPECT_TRUE(list.back().is_final);
    EXPECT_EQ(list.back().token_ids, goldens[index])
        << "clip " << index << ", chunk " << chunk_positions;
    std::printf("chunk %lld positions: clip %d: %zu partials, final %s HF greedy\n",
                static_cast<long long>(chunk_positions), index, list.size() - 1,
                list.back().token_ids == goldens[index] ? "equals" : "differs from");
    ++index;
  }
  return outputs;
}

// One offline final (no chunks, no partials) for each of `inputs`, all posted at once:
// "features_a" / "features_b" send the clip's log-mel features, "embeddings_a" / "embeddings_b"
// Hugging Face's projector outputs (audio_embeds_a/b) in place of the encoder. Expects every final
// to equal Hugging Face's greedy tokens of its clip and every KV block to be free afterwards.
inline void ExpectOfflineFinalsEqualGolden(Engine* engine, const LogMel& log_mel,
                                           const std::vector<std::string>& inputs) {
  auto golden = SafetensorsFile::Open(GoldenDir() + "/golden.safetensors");
  ASSERT_TRUE(golden.ok()) << golden.status();
  std::map<SequenceId, std::string> expected_of;
  for (const std::string& input : inputs) {
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
      const FrameMajor features = Features(log_mel, Clip("clip_" + letter));
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
  size_t finals = 0;
  for (int wait = 0; wait < 600 && finals < inputs.size(); ++wait) {
    for (SequenceOutput& output : engine->PopOutputs(absl::Milliseconds(100))) {
      ASSERT_TRUE(output.status.ok()) << output.status;
      ASSERT_TRUE(output.is_final);
      ++finals;
      const std::string& key = expected_of[output.id];
      const std::vector<int64_t> expected = Golden(key);
      EXPECT_EQ(output.token_ids, expected) << key;
      std::printf("sequence %lld (%s): final %s HF greedy\n", static_cast<long long>(output.id),
                  key.c_str(), output.token_ids == expected ? "equals" : "differs from");
    }
  }
  EXPECT_EQ(finals, inputs.size());
  for (const auto& [id, key] : expected_of) engine->Release(id);
  WaitForFreeKvBlocks(*engine);
  EXPECT_EQ(engine->stats().kv_blocks_used, 0);
}

}  // namespace speechllm::engine

#endif  // SPEECHLLM_TESTS_MODEL_ENGINE_MODEL_FIXTURE_H_
