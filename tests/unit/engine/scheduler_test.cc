// The Scheduler driven as Engine::Loop drives it, without the engine's admission (label unit,
// FakeModelRunner): a stream whose KV cannot grow fails alone, the streams batched with it in the
// same step go on; work without encoder positions is not held back by a step's overdrawn encoder
// budget; a long prefill runs in pieces of the step's token budget.
#include "engine/scheduler.h"

#include <algorithm>
#include <cstdio>

#include "engine/fake_model_runner.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/engine_fixture.h"

namespace speechllm::engine {
namespace {

// b's next chunk needs more KV than the 8-block pool has left. Failing b resets its runner state
// before the step runs; its encode item used to stay in the plan, so the runner encoded onto the
// reset encoder cache and the whole step, a's update included, failed.
TEST(SchedulerTest, AStreamThatCannotGetKvFailsAlone) {
  FakeModelRunner::Options options;
  options.num_kv_blocks = 8;  // 128 tokens
  FakeModelRunner runner(options);
  Scheduler scheduler(EngineConfig{}, runner.config(), options.num_kv_blocks, options.block_size);
  auto step = [&] {
    const StepPlan plan = scheduler.Schedule();
    for (SequenceId id : scheduler.TakeRunnerResets()) runner.ResetSequence(id);
    absl::StatusOr<StepResult> result = StepResult{};
    if (!plan.empty()) result = runner.Execute(plan);
    std::vector<SequenceOutput> outputs = scheduler.Update(plan, result, absl::ZeroDuration());
    for (SequenceId id : scheduler.TakeRunnerResets()) runner.ResetSequence(id);
    return outputs;
  };
  SequenceConfig config;
  config.max_new_tokens_per_update = 1;
  for (SequenceId id : {1, 2}) {
    scheduler.AddSequence(id, config);
    scheduler.StartSegment(id, {0, kPrefix, kSuffix});
  }
  scheduler.AddChunk(1, Chunk(0, 0, 20));  // a: 10 audio tokens
  scheduler.AddChunk(2, Chunk(0, 0, 50));  // b: 25 audio tokens
  for (int i = 0; i < 3; ++i) step();
  scheduler.AddChunk(1, Chunk(0, 20, 24));
  scheduler.AddChunk(2, Chunk(0, 50, 200));  // 75 more tokens: b's KV no longer fits
  bool a_updated = false, b_failed = false;
  for (const SequenceOutput& o : step()) {
    if (o.id == 1) {
      EXPECT_TRUE(o.status.ok()) << "a: " << o.status;
      a_updated = true;
    } else {
      EXPECT_EQ(o.status.code(), absl::StatusCode::kResourceExhausted) << "b: " << o.status;
      b_failed = true;
    }
  }
  EXPECT_TRUE(a_updated);
  EXPECT_TRUE(b_failed);
}

// The first encoder work of a step always goes, even past the budget; a segment end needing no
// encoder positions (nothing left to encode) must still go in the same step, not wait for the
// next one because the budget went negative.
TEST(SchedulerTest, WorkWithoutEncoderPositionsIgnoresAnOverdrawnBudget) {
  FakeModelRunner runner(FakeModelRunner::Options{});
  EngineConfig config;
  config.max_step_encoder_positions = 100;
  Scheduler scheduler(config, runner.config(), 1024, 16);
  for (SequenceId id : {1, 2}) {
    scheduler.AddSequence(id, SequenceConfig{});
    scheduler.StartSegment(id, {0, kPrefix, kSuffix});
  }
  const StepPlan prefixes = scheduler.Schedule();  // both prompts
  ASSERT_EQ(prefixes.prefills.size(), 2u);
  scheduler.Update(prefixes, runner.Execute(prefixes), absl::ZeroDuration());
  const absl::Time t0 = absl::Now();
  auto chunk = Chunk(0, 0, 200);  // 200 positions: twice the budget, the most overdue work
  chunk->arrival_time = t0;
  scheduler.AddChunk(1, std::move(chunk));
  auto end = End(0, 0, 0);  // no audio at all: an empty final, no encoder work
  end->endpoint_time = t0 + absl::Seconds(1);
  scheduler.EndSegment(2, std::move(end));
  const StepPlan plan = scheduler.Schedule();
  ASSERT_EQ(plan.encodes.size(), 1u);
  const std::vector<SequenceOutput> outputs =
      scheduler.Update(plan, runner.Execute(plan), absl::ZeroDuration());
  bool empty_final = false;
  for (const SequenceOutput& o : outputs) empty_final |= o.id == 2 && o.is_final;
  EXPECT_TRUE(empty_final) << "the empty final waited for the next step";
}

// Chunked prefill: an exact final of 84 audio tokens (88 prefill tokens with the suffix) in steps
// of 32 tokens runs in pieces that continue each other, while the other stream decodes a token in
// each of those steps, and still gives the toy model's greedy final. The whole final used to go
// into one step of 89 tokens.
TEST(SchedulerTest, ALongFinalRunsInPiecesBesideAStreamThatDecodes) {
  FakeModelRunner runner(FakeModelRunner::Options{});
  EngineConfig config;
  config.max_step_tokens = 32;
  Scheduler scheduler(config, runner.config(), 1024, 16);
  SequenceConfig sequence_config;
  sequence_config.final_mode = FinalMode::kExact;
  for (SequenceId id : {1, 2}) {
    scheduler.AddSequence(id, sequence_config);
    scheduler.StartSegment(id, {0, kPrefix, kSuffix});
  }
  std::vector<SequenceOutput> outputs;
  struct Piece {
    int64_t start, size;
    bool beside_2;  // the other stream (decoding) had an item in the same step
  };
  std::vector<Piece> items_of_1;  // after its segment end
  bool ended = false;
  int64_t max_step_tokens = 0;
  auto step = [&] {
    const StepPlan plan = scheduler.Schedule();
    for (SequenceId id : scheduler.TakeRunnerResets()) runner.ResetSequence(id);
    max_step_tokens = std::max(max_step_tokens, plan.num_tokens());
    bool item_of_2 = false;
    for (const PrefillItem& item : plan.prefills) item_of_2 |= item.id == 2;
    for (const PrefillItem& item : plan.prefills) {
      if (item.id == 1 && ended) {
        items_of_1.push_back(
            {item.start_position, static_cast<int64_t>(item.token_ids.size()), item_of_2});
      }
    }
    for (SequenceOutput& o : scheduler.Update(plan, runner.Execute(plan), absl::ZeroDuration()))
      outputs.push_back(std::move(o));
    for (SequenceId id : scheduler.TakeRunnerResets()) runner.ResetSequence(id);
  };
  step();                                  // both prompts
  scheduler.AddChunk(2, Chunk(0, 0, 40));  // 20 audio tokens: 2 then decodes for 7 steps
  step();
  scheduler.EndSegment(1, End(0, 337, 0));  // 169 conv positions, 84 audio tokens
  ended = true;
  for (int i = 0; i < 40 && scheduler.HasWork(); ++i) step();
  EXPECT_FALSE(scheduler.HasWork());

  ASSERT_GE(items_of_1.size(), 3u);
  int64_t next_position = static_cast<int64_t>(kPrefix.size());
  int beside_2 = 0;
  for (size_t i = 0; i < 3; ++i) {  // the pieces of 1's final prefill (its decodes follow)
    SCOPED_TRACE(i);
    EXPECT_EQ(items_of_1[i].start, next_position) << "pieces continue each other";
    EXPECT_LE(items_of_1[i].size, 32);
    next_position += items_of_1[i].size;
    beside_2 += items_of_1[i].beside_2;
  }
  EXPECT_EQ(next_position, static_cast<int64_t>(kPrefix.size()) + 84 + 4);
  EXPECT_EQ(beside_2, 3) << "the other stream decoded beside every piece";
  EXPECT_LE(max_step_tokens, 32);
  std::printf("pieces of the 88-token final: %lld, %lld, %lld tokens; largest step %lld tokens\n",
              static_cast<long long>(items_of_1[0].size),
              static_cast<long long>(items_of_1[1].size),
              static_cast<long long>(items_of_1[2].size), static_cast<long long>(max_step_tokens));
  int finals = 0;
  for (const SequenceOutput& o : outputs) {
    if (!o.is_final) continue;
    ++finals;
    EXPECT_TRUE(o.status.ok()) << o.status;
    EXPECT_EQ(o.id, 1);
    EXPECT_EQ(o.token_ids, FakeModelRunner::Greedy(84, 4, 256));
  }
  EXPECT_EQ(finals, 1);
}

}  // namespace
}  // namespace speechllm::engine
