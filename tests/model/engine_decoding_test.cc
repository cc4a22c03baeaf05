// Decoding on the tiny fixture model through the engine (label model): the repetition guard cuts
// the model's loops after their first copy in the exact final, a step that adds no audio token
// (a chunk of one encoder position, without partials) is no failure, and a streamed final's
// per-token log-probabilities (its confidence) equal the offline decoder's and Hugging Face's.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <utility>
#include <vector>

#include "engine/model/offline_transcriber.h"
#include "engine/repetition_guard.h"
#include "tests/model/engine_model_fixture.h"

namespace speechllm::engine {
namespace {

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

// The verified draft tokens of a streamed final carry the model's log-probability of each (the
// row that verifies it scores it), decoded ones that of the choice: both equal a plain offline
// greedy decode's, and the first equals log-softmax of Hugging Face's last prompt logits.
TEST_F(EngineModelTest, StreamedFinalLogProbabilitiesEqualTheOfflineDecodersAndHuggingFaces) {
  std::unique_ptr<Engine> engine = MakeEngine(/*num_kv_blocks=*/64);
  ASSERT_NE(engine, nullptr);
  RuntimeOptions options;
  options.dtype = "float32";
  auto offline = OfflineTranscriber::Create(GoldenDir() + "/model", options);
  ASSERT_TRUE(offline.ok()) << offline.status();
  const auto outputs = StreamClips(engine.get(), model_->log_mel(), 10, FinalMode::kExact);
  ASSERT_EQ(outputs.size(), 2u);
  std::vector<int64_t> prompt = kPrefix;
  prompt.push_back(model_->config().audio_token_id);
  prompt.insert(prompt.end(), kSuffix.begin(), kSuffix.end());
  int index = 0;
  for (const auto& [id, list] : outputs) {
    const std::string clip = index == 0 ? "clip_a" : "clip_b";
    const SequenceOutput& final = list.back();
    ASSERT_TRUE(final.is_final);
    ASSERT_EQ(final.token_log_probabilities.size(), final.token_ids.size());
    auto reference = (*offline)->Transcribe(Clip(clip), prompt, 24);
    ASSERT_TRUE(reference.ok()) << reference.status();
    ASSERT_EQ(final.token_ids, reference->generated_ids) << clip;
    double max_error = 0, log_sum = 0;
    for (size_t i = 0; i < final.token_ids.size(); ++i) {
      max_error =
          std::max(max_error, std::abs(static_cast<double>(final.token_log_probabilities[i]) -
                                       reference->log_probabilities[i]));
      log_sum += final.token_log_probabilities[i];
    }
    // Hugging Face's logits of the whole prompt: the last row scores the first generated token.
    auto golden = SafetensorsFile::Open(GoldenDir() + "/golden.safetensors");
    ASSERT_TRUE(golden.ok()) << golden.status();
    const std::vector<float> logits =
        (*golden)->Get(index == 0 ? "logits_a" : "logits_b")->ToFloat32();
    const int64_t vocab = model_->config().text.vocab_size;
    const float* last = logits.data() + logits.size() - vocab;
    double normalizer = 0;
    for (int64_t v = 0; v < vocab; ++v) normalizer += std::exp(static_cast<double>(last[v]));
    const double hf_first = last[final.token_ids[0]] - std::log(normalizer);
    const double hf_error = std::abs(final.token_log_probabilities[0] - hf_first);
    std::printf(
        "%s: %zu tokens, log-probability error vs offline %.2e, first token vs HF %.2e; "
        "confidence %.4f\n",
        clip.c_str(), final.token_ids.size(), max_error, hf_error,
        std::exp(log_sum / static_cast<double>(final.token_ids.size())));
    EXPECT_LE(max_error, 1e-4);
    EXPECT_LE(hf_error, 1e-4);
    ++index;
  }
}

}  // namespace
}  // namespace speechllm::engine
