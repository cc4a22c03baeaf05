// A failed step of several sequences (label unit): the Engine runs it again in halves
// (ExecuteIsolatingFailures) so that only a sequence whose own work fails is failed, its
// neighbours' finals are the toy model's, a transient fault fails nobody, and a step that fails for
// every sequence still counts as a failed step. FakeModelRunner; plans split by PartOf.
#include <algorithm>
#include <cstdio>
#include <vector>

#include "absl/base/thread_annotations.h"
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
  StepLog log_;
};

TEST_F(EngineIsolationTest, AFailingSequenceFailsAloneAndItsNeighboursGoOn) {
  FakeModelRunner::Options options;
  options.fail_on_token_id = kPoison;
  absl::Notification release;
  const SequenceId first = MakeEngineHeldInFirstStep(&release, {}, kPrefix, options);
  engine_->SetStepObserver(&log_);
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
  const SequenceId first = MakeEngineHeldInFirstStep(&release, {}, kPrefix, options);
  engine_->SetStepObserver(&log_);
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
  FakeModelRunner::Options options;
  options.fail_on_token_id = kPoison;
  absl::Notification release;
  const SequenceId good = MakeEngineHeldInFirstStep(&release, {}, kPrefix, options);
  engine_->SetStepObserver(&log_);
  const SequenceId bad_a = Add(), bad_b = Add();
  for (SequenceId id : {bad_a, bad_b})
    ASSERT_TRUE(engine_->StartSegment(id, {0, kPoisonedPrefix, kSuffix}).ok());
  release.Notify();
  const std::vector<SequenceOutput> outputs = Collect(2);
  for (SequenceId id : {bad_a, bad_b}) {
    const std::vector<SequenceOutput> of = Of(outputs, id);
    ASSERT_EQ(of.size(), 1u);
    EXPECT_EQ(of[0].status.code(), absl::StatusCode::kInternal) << of[0].status;
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

TEST(StepPartsTest, EachPartHoldsItsSequencesItemsAndTheCopiesIntoTheirBlocks) {
  EncoderChunk chunk;
  StepPlan plan;
  plan.live_sequences = 5;
  plan.encodes = {{7, EncodeItem::Kind::kBlock, &chunk},
                  {3, EncodeItem::Kind::kBlock, &chunk},
                  {7, EncodeItem::Kind::kBlock, &chunk}};
  PrefillItem three, nine;
  three.id = 3;
  three.block_table = {10, 11};
  nine.id = 9;
  nine.block_table = {10, 12};  // shares block 10, a prefix block, with sequence 3
  plan.prefills = {three, nine};
  plan.block_copies = {{20, 12}, {21, 30}};  // into sequence 9's block; into no item's block
  EXPECT_THAT(SequencesOf(plan), ElementsAre(7, 3, 9));

  const StepPlan seven = PartOf(plan, {7});
  ASSERT_EQ(seven.encodes.size(), 2u);
  EXPECT_EQ(seven.encodes[0].id, 7);
  EXPECT_TRUE(seven.prefills.empty());
  EXPECT_THAT(seven.block_copies, ElementsAre(std::make_pair<int64_t, int64_t>(21, 30)));
  EXPECT_EQ(seven.live_sequences, 5);

  const StepPlan others = PartOf(plan, {9, 3});
  ASSERT_EQ(others.encodes.size(), 1u);
  EXPECT_EQ(others.encodes[0].id, 3);
  ASSERT_EQ(others.prefills.size(), 2u);
  EXPECT_EQ(others.prefills[0].id, 3);  // plan order, not the order asked for
  EXPECT_EQ(others.prefills[1].id, 9);
  EXPECT_EQ(others.block_copies.size(), 2u);
}

}  // namespace
}  // namespace speechllm::engine
