// The Scheduler driven as Engine::Loop drives it, without the engine's admission (label unit,
// FakeModelRunner): a stream whose KV cannot grow fails alone, the streams batched with it in the
// same step go on; work without encoder positions is not held back by a step's overdrawn encoder
// budget; a long prefill runs in pieces of the step's token budget, keeps its place, does not start
// with a sliver that drags a whole encode along, and leaves nothing behind when cancelled or failed
// between pieces.
#include "engine/scheduler.h"

#include <algorithm>
#include <cstdio>

#include "engine/fake_model_runner.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/engine_fixture.h"

namespace speechllm::engine {
namespace {

// Runs one step as Engine::Loop does; returns its plan and outputs.
struct Stepped {
  StepPlan plan;
  std::vector<SequenceOutput> outputs;
};
Stepped Step(Scheduler* scheduler, FakeModelRunner* runner) {
  Stepped stepped;
  stepped.plan = scheduler->Schedule();
  for (SequenceId id : scheduler->TakeRunnerResets()) runner->ResetSequence(id);
  absl::StatusOr<StepResult> result = StepResult{};
  if (!stepped.plan.empty()) result = runner->Execute(stepped.plan);
  stepped.outputs = scheduler->Update(stepped.plan, result, absl::ZeroDuration());
  for (SequenceId id : scheduler->TakeRunnerResets()) runner->ResetSequence(id);
  return stepped;
}

// The finals among `outputs`, each expected OK and equal to the toy model's greedy text for
// `num_audio` audio tokens and the 4-token suffix.
int CountGreedyFinals(const std::vector<SequenceOutput>& outputs, int64_t num_audio) {
  int finals = 0;
  for (const SequenceOutput& o : outputs) {
    if (!o.is_final) continue;
    ++finals;
    EXPECT_TRUE(o.status.ok()) << o.status;
    EXPECT_EQ(o.token_ids, FakeModelRunner::Greedy(num_audio, 4, 256)) << "sequence " << o.id;
  }
  return finals;
}

// A scheduler over the toy runner with a step budget of `budget` tokens and two streams (1, 2)
// whose prompts are computed.
struct TwoStreams {
  explicit TwoStreams(int64_t budget) : scheduler(Budget(budget), runner.config(), 1024, 16) {
    for (SequenceId id : {1, 2}) {
      scheduler.AddSequence(id, SequenceConfig{});
      scheduler.StartSegment(id, {0, kPrefix, kSuffix});
    }
    Step(&scheduler, &runner);
  }
  static EngineConfig Budget(int64_t budget) {
    EngineConfig config;
    config.max_step_tokens = budget;
    return config;
  }
  FakeModelRunner runner{FakeModelRunner::Options{}};
  Scheduler scheduler;
};

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
  EXPECT_EQ(prefixes.live_sequences, 2);  // the runner's CPU thread policy reads it
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
  EXPECT_EQ(CountGreedyFinals(outputs, 84), 1);
  for (const SequenceOutput& o : outputs) EXPECT_FALSE(o.is_final && o.id != 1);
}

// Two exact finals (88 prefill tokens each) in a 90-token step: the second used to start with a
// 2-token piece and take its whole 169-position re-encode into the step; it now waits for the
// next step and goes in larger pieces.
TEST(SchedulerTest, APieceOfAFewTokensDoesNotPullInAWholeEncode) {
  TwoStreams streams(90);
  Scheduler& scheduler = streams.scheduler;
  FakeModelRunner& runner = streams.runner;
  const absl::Time t0 = absl::Now();
  for (SequenceId id : {1, 2}) {
    auto end = End(0, 337, 0);
    end->endpoint_time = t0 + absl::Milliseconds(id);
    scheduler.EndSegment(id, std::move(end));
  }
  const Stepped first = Step(&scheduler, &runner);
  ASSERT_EQ(first.plan.prefills.size(), 1u);
  EXPECT_EQ(first.plan.prefills[0].id, 1);
  EXPECT_EQ(first.plan.encodes.size(), 1u) << "the second final's encode waits";
  int finals = 0;
  for (int i = 0; i < 60 && scheduler.HasWork(); ++i) {
    const Stepped stepped = Step(&scheduler, &runner);
    for (const PrefillItem& item : stepped.plan.prefills) {
      const bool encodes = std::any_of(stepped.plan.encodes.begin(), stepped.plan.encodes.end(),
                                       [&](const EncodeItem& e) { return e.id == item.id; });
      if (encodes) {
        EXPECT_GE(item.token_ids.size(), 16u) << "a sliver with a whole encode";
      }
    }
    finals += CountGreedyFinals(stepped.outputs, 84);
  }
  EXPECT_EQ(finals, 2);
}

// The rest of a split update keeps the place its oldest chunk gave it: a chunk of another stream
// that arrived between the update's two chunks used to overtake it.
TEST(SchedulerTest, TheRestOfASplitItemKeepsItsPlace) {
  TwoStreams streams(32);
  Scheduler& scheduler = streams.scheduler;
  FakeModelRunner& runner = streams.runner;
  const absl::Time t0 = absl::Now();
  auto chunk = [&](int64_t first, int64_t end, int ms) {
    auto c = Chunk(0, first, end);
    c->arrival_time = t0 + absl::Milliseconds(ms);
    return c;
  };
  scheduler.AddChunk(1, chunk(0, 40, 0));  // stream 1: chunks at 0 and 2 ms (44 tokens in all)
  scheduler.AddChunk(2, chunk(0, 40, 1));  // stream 2: one at 1 ms
  scheduler.AddChunk(1, chunk(40, 80, 2));
  const Stepped first = Step(&scheduler, &runner);
  ASSERT_FALSE(first.plan.prefills.empty());
  EXPECT_EQ(first.plan.prefills[0].id, 1);
  EXPECT_EQ(first.plan.prefills[0].token_ids.size(), 32u) << "a first piece";
  const Stepped second = Step(&scheduler, &runner);
  ASSERT_FALSE(second.plan.prefills.empty());
  EXPECT_EQ(second.plan.prefills[0].id, 1) << "stream 1's rest (0 ms) goes before stream 2 (1 ms)";
}

// An update of 2 audio tokens, the 4-token suffix and an 8-token draft in a 10-token step: only
// its choice tokens overrun the budget, so it goes whole and its partial comes in this step.
// Splitting it (5 tokens now, the 9 that need choices next step) only delayed the partial.
TEST(SchedulerTest, AnItemWhoseChoicesAloneOverrunTheBudgetGoesWhole) {
  FakeModelRunner runner(FakeModelRunner::Options{});
  EngineConfig config;
  config.max_step_tokens = 10;
  Scheduler scheduler(config, runner.config(), 1024, 16);
  scheduler.AddSequence(1, SequenceConfig{});
  scheduler.StartSegment(1, {0, kPrefix, kSuffix});
  scheduler.AddChunk(1, Chunk(0, 0, 40));  // 20 audio tokens: a hypothesis of 8 tokens
  for (int i = 0; i < 40 && scheduler.HasWork(); ++i) Step(&scheduler, &runner);
  scheduler.AddChunk(1, Chunk(0, 40, 44));  // 2 more audio tokens
  const Stepped update = Step(&scheduler, &runner);
  ASSERT_EQ(update.plan.prefills.size(), 1u);
  EXPECT_EQ(update.plan.prefills[0].token_ids.size(), 2u + 4u + 8u);
}

// Under load the partial a client reads goes before a draft nobody reads (a finals-only FAST
// stream's), however much older the draft's chunk: they used to be ranked alike, oldest first.
TEST(SchedulerTest, DraftsNobodyReadsWaitForPartialsThatAreSent) {
  FakeModelRunner runner(FakeModelRunner::Options{});
  EngineConfig config;
  config.max_step_tokens = 32;  // one 24-token update a step
  Scheduler scheduler(config, runner.config(), 1024, 16);
  SequenceConfig unsent;
  unsent.final_mode = FinalMode::kFast;
  unsent.partials_unsent = true;
  scheduler.AddSequence(1, unsent);
  scheduler.AddSequence(2, SequenceConfig{});
  for (SequenceId id : {1, 2}) scheduler.StartSegment(id, {0, kPrefix, kSuffix});
  Step(&scheduler, &runner);  // both prompts
  const absl::Time t0 = absl::Now();
  auto draft_chunk = Chunk(0, 0, 40);
  draft_chunk->arrival_time = t0;
  scheduler.AddChunk(1, std::move(draft_chunk));
  auto sent_chunk = Chunk(0, 0, 40);
  sent_chunk->arrival_time = t0 + absl::Seconds(1);
  scheduler.AddChunk(2, std::move(sent_chunk));
  const Stepped first = Step(&scheduler, &runner);
  ASSERT_FALSE(first.plan.prefills.empty());
  EXPECT_EQ(first.plan.prefills[0].id, 2) << "the partial that is sent goes first";
  // The draft follows, then the unsent stream's final takes in whatever is still queued.
  auto end = End(0, 161, 80);  // 81 conv positions: the chunks, then a 1-position tail
  scheduler.AddChunk(1, Chunk(0, 40, 80));
  scheduler.EndSegment(1, std::move(end));
  int finals = 0;
  for (int i = 0; i < 60 && scheduler.HasWork(); ++i) {
    for (const SequenceOutput& o : Step(&scheduler, &runner).outputs) finals += o.is_final;
  }
  EXPECT_EQ(finals, 1);
  EXPECT_FALSE(scheduler.HasWork());
}

// A stream cancelled, or failed by its step, between two pieces leaves nothing behind.
TEST(SchedulerTest, CancellingOrFailingBetweenPiecesFreesEverything) {
  for (const bool cancel : {true, false}) {
    SCOPED_TRACE(cancel ? "cancelled" : "failed");
    FakeModelRunner::Options options;
    options.fail_at_step = cancel ? -1 : 2;  // prompt, first piece, then the second piece fails
    FakeModelRunner runner(options);
    EngineConfig config;
    config.max_step_tokens = 32;
    Scheduler scheduler(config, runner.config(), 1024, 16);
    scheduler.AddSequence(1, SequenceConfig{});
    scheduler.StartSegment(1, {0, kPrefix, kSuffix});
    Step(&scheduler, &runner);
    scheduler.EndSegment(1, End(0, 337, 0));
    const Stepped piece = Step(&scheduler, &runner);
    ASSERT_EQ(piece.plan.prefills.size(), 1u);
    ASSERT_EQ(piece.plan.prefills[0].token_ids.size(), 32u);
    ASSERT_TRUE(scheduler.HasWork()) << "the rest is pending";
    if (cancel) {
      scheduler.RemoveSequence(1);
    } else {
      const Stepped failed = Step(&scheduler, &runner);
      ASSERT_EQ(failed.outputs.size(), 1u);
      EXPECT_EQ(failed.outputs[0].status.code(), absl::StatusCode::kInternal);
    }
    EXPECT_FALSE(scheduler.HasWork());
    EXPECT_TRUE(scheduler.Schedule().empty());
    EXPECT_EQ(scheduler.kv().NumFreeBlocks(), 1024);
  }
}

}  // namespace
}  // namespace speechllm::engine
