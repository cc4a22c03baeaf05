// A failed step of several sequences (label unit): the Engine runs it again in halves
// (ExecuteIsolatingFailures) so that only a sequence whose own work fails is failed, its
// neighbours' finals are the toy model's, a transient fault fails nobody, and a step that fails for
// every sequence still counts as a failed step. FakeModelRunner, and a scripted runner for the
// number of calls a split takes; plans split by PartOf.
#include <algorithm>
#include <cstdio>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "engine/step_isolation.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/engine_fixture.h"

namespace speechllm::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kPoison = 400;  // FakeModelRunner::Options::fail_on_token_id
const std::vector<int64_t> kPoisonedPrefix = {1, 2, kPoison, 501};

// The steps the engine reports, read by the test thread.
class StepLog : public StepObserver {
 public:
  void OnStep(const StepRecord& step) override {
    absl::MutexLock lock(&mu_);
    steps_.push_back(step);
  }
  std::vector<StepRecord> steps() const {
    absl::MutexLock lock(&mu_);
    return steps_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<StepRecord> steps_ ABSL_GUARDED_BY(mu_);
};

// Outputs of `id` among `outputs`.
std::vector<SequenceOutput> Of(const std::vector<SequenceOutput>& outputs, SequenceId id) {
  std::vector<SequenceOutput> of;
  for (const SequenceOutput& o : outputs) {
    if (o.id == id) of.push_back(o);
  }
  return of;
}

class EngineIsolationTest : public EngineTest {
 protected:
  // Two chunks, then (Finish) an exact final of 84 audio tokens.
  void Speak(SequenceId id) {
    ASSERT_TRUE(engine_->SubmitChunk(id, Chunk(0, 0, 50)).ok());
    ASSERT_TRUE(engine_->SubmitChunk(id, Chunk(0, 50, 100)).ok());
  }
  void Finish(SequenceId id) { ASSERT_TRUE(engine_->EndSegment(id, End(0, 337, 100)).ok()); }
  void ExpectToyFinal(const std::vector<SequenceOutput>& outputs, SequenceId id) {
    const std::vector<SequenceOutput> of = Of(outputs, id);
    ASSERT_FALSE(of.empty()) << "sequence " << id;
    for (const SequenceOutput& o : of) EXPECT_TRUE(o.status.ok()) << o.status;
    EXPECT_TRUE(of.back().is_final);
    EXPECT_EQ(of.back().token_ids, FakeModelRunner::Greedy(84, 4, 256)) << "sequence " << id;
  }
  // An engine over a runner that fails steps with kPoison, held in its first step (a blocker's
  // prefix) until `release`, reporting to log_. Returns the blocker.
  SequenceId MakeLoggedEngineHeld(absl::Notification* release,
                                  FakeModelRunner::Options options = {}) {
    options.fail_on_token_id = kPoison;
    const SequenceId blocker = MakeEngineHeldInFirstStep(release, {}, kPrefix, options);
    engine_->SetStepObserver(&log_);
    return blocker;
  }
  // The engine's loop thread reports to log_ until the engine stops: stop it first.
  void TearDown() override { engine_.reset(); }
  StepLog log_;
};

TEST_F(EngineIsolationTest, AFailingSequenceFailsAloneAndItsNeighboursGoOn) {
  absl::Notification release;
  const SequenceId first = MakeLoggedEngineHeld(&release);
  const SequenceId bad = Add(), second = Add();
  ASSERT_TRUE(engine_->StartSegment(bad, {0, kPoisonedPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->StartSegment(second, {0, kPrefix, kSuffix}).ok());
  // The chunks are encoded in the step that fails: the runner must put their sequences' encoder
  // state back for the rerun to continue it. (A segment end would replace queued chunks with a
  // whole re-encode, so the ends come after the failure.)
  Speak(first);
  Speak(second);
  release.Notify();
  std::vector<SequenceOutput> outputs = Collect(1);
  Finish(first);
  Finish(second);
  for (SequenceOutput& o : Collect(2)) outputs.push_back(std::move(o));
  const std::vector<SequenceOutput> failed = Of(outputs, bad);
  ASSERT_EQ(failed.size(), 1u);
  std::printf("the failing sequence: %s\n", failed[0].status.ToString().c_str());
  EXPECT_EQ(failed[0].status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(failed[0].status.message(), HasSubstr("fake model failure"));
  ExpectToyFinal(outputs, first);
  ExpectToyFinal(outputs, second);
  int64_t split_steps = 0;
  for (const StepRecord& step : log_.steps()) {
    EXPECT_TRUE(step.ok);
    if (step.failed_sequences == 0) continue;
    ++split_steps;
    std::printf("split step: %lld sequences, %lld runner calls, %lld failed\n",
                static_cast<long long>(step.sequences), static_cast<long long>(step.executions),
                static_cast<long long>(step.failed_sequences));
    EXPECT_EQ(step.failed_sequences, 1);
    EXPECT_GE(step.executions, 3);
  }
  EXPECT_EQ(split_steps, 1);
  for (SequenceId id : {first, bad, second}) engine_->Release(id);
  ExpectAllBlocksFree();
}

TEST_F(EngineIsolationTest, ATransientFaultFailsNoSequence) {
  FakeModelRunner::Options options;
  options.fail_at_step = 1;  // the step after the held first one, with every sequence in it
  absl::Notification release;
  const SequenceId first = MakeLoggedEngineHeld(&release, options);
  const SequenceId second = Add();
  ASSERT_TRUE(engine_->StartSegment(second, {0, kPrefix, kSuffix}).ok());
  for (SequenceId id : {first, second}) {
    Speak(id);
    Finish(id);
  }
  release.Notify();
  const std::vector<SequenceOutput> outputs = Collect(2);
  ExpectToyFinal(outputs, first);
  ExpectToyFinal(outputs, second);
  const std::vector<StepRecord> steps = log_.steps();
  ASSERT_GE(steps.size(), 2u);
  EXPECT_TRUE(steps[1].ok);
  EXPECT_EQ(steps[1].executions, 3);  // the failed whole, then each half once
  EXPECT_EQ(steps[1].failed_sequences, 0);
  for (SequenceId id : {first, second}) engine_->Release(id);
  ExpectAllBlocksFree();
}

TEST_F(EngineIsolationTest, AStepFailingForEverySequenceIsAFailedStep) {
  absl::Notification release;
  const SequenceId good = MakeLoggedEngineHeld(&release);
  const SequenceId bad_a = Add(), bad_b = Add();
  for (SequenceId id : {bad_a, bad_b})
    ASSERT_TRUE(engine_->StartSegment(id, {0, kPoisonedPrefix, kSuffix}).ok());
  release.Notify();
  const std::vector<SequenceOutput> outputs = Collect(2);
  for (SequenceId id : {bad_a, bad_b}) {
    const std::vector<SequenceOutput> of = Of(outputs, id);
    ASSERT_EQ(of.size(), 1u);
    EXPECT_EQ(of[0].status.code(), absl::StatusCode::kInternal) << of[0].status;
    EXPECT_THAT(of[0].status.message(), HasSubstr(absl::StrCat("sequence ", id, " holds")))
        << "each stream's error is its own";
  }
  const std::vector<StepRecord> steps = log_.steps();
  EXPECT_TRUE(std::any_of(steps.begin(), steps.end(), [](const StepRecord& s) { return !s.ok; }))
      << "the health check counts a step in which every sequence failed";
  // The engine goes on serving.
  Speak(good);
  Finish(good);
  ExpectToyFinal(Collect(1), good);
  for (SequenceId id : {good, bad_a, bad_b}) engine_->Release(id);
  ExpectAllBlocksFree();
}

// A runner that fails any step holding work of a sequence in `bad`, and records each call's
// sequences.
class ScriptedRunner : public ModelRunner {
 public:
  explicit ScriptedRunner(std::vector<SequenceId> bad) : bad_(std::move(bad)) {}
  const ModelConfig& config() const override { return config_; }
  int64_t num_kv_blocks() const override { return 64; }
  int64_t block_size() const override { return 16; }
  void ResetSequence(SequenceId) override {}
  absl::StatusOr<StepResult> Execute(const StepPlan& plan) override {
    calls_.push_back(plan.sequence_ids());
    for (SequenceId id : calls_.back()) {
      if (std::find(bad_.begin(), bad_.end(), id) != bad_.end()) {
        return absl::InternalError(absl::StrCat("sequence ", id, " breaks the step"));
      }
    }
    StepResult result;
    for (const EncodeItem& item : plan.encodes)
      result.audio_tokens.push_back(static_cast<int64_t>(item.id) * 10);
    for (const PrefillItem& item : plan.prefills) {
      result.choices.push_back({TokenChoice{static_cast<int64_t>(item.id) * 100}});
    }
    return result;
  }
  const std::vector<std::vector<SequenceId>>& calls() const { return calls_; }

 private:
  const ModelConfig config_ = *ModelConfig::Preset("tiny");
  std::vector<SequenceId> bad_;
  std::vector<std::vector<SequenceId>> calls_;
};

// Sequences 1..n, each with a prefill item; the odd ones with an encoder item too.
StepPlan PlanOf(int n, const EncoderChunk* chunk) {
  StepPlan plan;
  for (SequenceId id = 1; id <= static_cast<SequenceId>(n); ++id) {
    if (id % 2 == 1) plan.encodes.push_back({id, EncodeItem::Kind::kBlock, chunk});
    PrefillItem item;
    item.id = id;
    plan.prefills.push_back(item);
  }
  return plan;
}

TEST(ExecuteIsolatingFailuresTest, OneBadSequenceAmongEightCostsSixMoreCalls) {
  EncoderChunk chunk;
  const StepPlan plan = PlanOf(8, &chunk);
  ScriptedRunner runner({5});
  int64_t executions = 0;
  const absl::StatusOr<StepResult> result = ExecuteIsolatingFailures(runner, plan, &executions);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(executions, 7);  // the whole, then two halves at each of 3 levels
  EXPECT_EQ(runner.calls().size(), 7u);
  ASSERT_EQ(result->failed_sequences.size(), 1u);
  EXPECT_EQ(result->failed_sequences[0].id, 5);
  EXPECT_THAT(result->failed_sequences[0].status.message(), HasSubstr("sequence 5 breaks"));
  // Every other sequence's results, in the plan's order.
  ASSERT_EQ(result->choices.size(), 8u);
  ASSERT_EQ(result->audio_tokens.size(), 4u);
  for (SequenceId id = 1; id <= 8; ++id) {
    if (id == 5) {
      EXPECT_TRUE(result->choices[id - 1].empty());
      continue;
    }
    ASSERT_EQ(result->choices[id - 1].size(), 1u);
    EXPECT_EQ(result->choices[id - 1][0].token_id, static_cast<int64_t>(id) * 100);
  }
  EXPECT_THAT(result->audio_tokens, ElementsAre(10, 30, 0, 70));
}

// Each sequence fails with the error of its own step of one (the whole step's error named only the
// first), and the record counts the step as failed for health and metrics.
TEST(ExecuteIsolatingFailuresTest, AStepFailingForEverySequenceFailsEachWithItsOwnError) {
  EncoderChunk chunk;
  ScriptedRunner runner({1, 2, 3, 4});
  int64_t executions = 0;
  const StepPlan plan = PlanOf(4, &chunk);
  const absl::StatusOr<StepResult> result = ExecuteIsolatingFailures(runner, plan, &executions);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(executions, 7);  // 2N - 1
  ASSERT_EQ(result->failed_sequences.size(), 4u);
  for (const StepResult::SequenceFailure& failure : result->failed_sequences) {
    EXPECT_THAT(failure.status.message(), HasSubstr(absl::StrCat("sequence ", failure.id, " ")));
  }
  const StepRecord record = MakeStepRecord(plan, result, absl::Milliseconds(1), executions);
  EXPECT_FALSE(record.ok);
  EXPECT_TRUE(record.any_failed());
  EXPECT_EQ(record.failed_sequences, 4);
}

TEST(ExecuteIsolatingFailuresTest, AStepWithBlockCopiesOrOneSequenceIsNotSplit) {
  EncoderChunk chunk;
  StepPlan copies = PlanOf(4, &chunk);
  copies.block_copies = {{3, 9}};  // another sequence of the step may have written block 3
  ScriptedRunner runner({2});
  int64_t executions = 0;
  EXPECT_FALSE(ExecuteIsolatingFailures(runner, copies, &executions).ok());
  EXPECT_EQ(executions, 1);
  ScriptedRunner alone({1});
  EXPECT_FALSE(ExecuteIsolatingFailures(alone, PlanOf(1, &chunk), &executions).ok());
  EXPECT_EQ(executions, 1);
}

TEST(StepPartsTest, EachPartHoldsItsSequencesItemsInPlanOrder) {
  EncoderChunk chunk;
  StepPlan plan;
  plan.live_sequences = 5;
  plan.encodes = {{7, EncodeItem::Kind::kBlock, &chunk},
                  {3, EncodeItem::Kind::kBlock, &chunk},
                  {7, EncodeItem::Kind::kBlock, &chunk}};
  PrefillItem three, nine;
  three.id = 3;
  nine.id = 9;
  plan.prefills = {three, nine};
  EXPECT_THAT(plan.sequence_ids(), ElementsAre(7, 3, 9));

  const StepPlan seven = PartOf(plan, {7});
  ASSERT_EQ(seven.encodes.size(), 2u);
  EXPECT_EQ(seven.encodes[0].id, 7);
  EXPECT_TRUE(seven.prefills.empty());
  EXPECT_EQ(seven.live_sequences, 5);

  const StepPlan others = PartOf(plan, {9, 3});
  ASSERT_EQ(others.encodes.size(), 1u);
  EXPECT_EQ(others.encodes[0].id, 3);
  ASSERT_EQ(others.prefills.size(), 2u);
  EXPECT_EQ(others.prefills[0].id, 3);  // plan order, not the order asked for
  EXPECT_EQ(others.prefills[1].id, 9);
}

}  // namespace
}  // namespace speechllm::engine
