// Decoding on the tiny fixture model through the engine (label model): the repetition guard cuts
// the model's loops after their first copy in the exact final, and a step that adds no audio token
// (a chunk of one encoder position, without partials) is no failure.
#include <cstdio>
#include <memory>
#include <utility>
#include <vector>

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

}  // namespace
}  // namespace speechllm::engine
