// The scheduler's per-step encoder budget (EngineConfig::max_step_encoder_positions) on the
// FakeModelRunner (label unit): six exact finals that arrive together spread over steps of at most
// the budget, still give the toy model's greedy finals and free every KV block; with the default
// budget the same finals share one step.
#include <algorithm>
#include <vector>

#include "absl/synchronization/notification.h"
#include "engine/engine.h"
#include "engine/fake_model_runner.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/engine_fixture.h"

namespace speechllm::engine {
namespace {

constexpr int kSequences = 6;
constexpr int64_t kValidFrames = 337;  // 169 conv positions, 84 audio tokens

// Starts and ends one segment in each of kSequences sequences (exact finals) at once; returns the
// encoder positions of every step that encoded something.
class EncoderBudgetTest : public EngineTest {
 protected:
  std::vector<int64_t> RunFinals(EngineConfig config) {
    // The first step is a blocker sequence's prefix prefill, and the engine holds in it while
    // the six starts and ends are posted: the scheduler sees all of them in one drain of its
    // inbox, however early or late the engine thread runs.
    absl::Notification first_step, queued;
    FakeModelRunner::Options options;
    options.first_step_entered = &first_step;
    options.hold_steps_until = &queued;
    MakeEngine(options, config);
    const SequenceId blocker = Add();
    EXPECT_TRUE(engine_->StartSegment(blocker, {0, kPrefix, kSuffix}).ok());
    EXPECT_TRUE(first_step.WaitForNotificationWithTimeout(absl::Seconds(30)));
    std::vector<SequenceId> ids;
    for (int i = 0; i < kSequences; ++i) {
      ids.push_back(Add());
      EXPECT_TRUE(engine_->StartSegment(ids.back(), {0, kPrefix, kSuffix}).ok());
    }
    for (SequenceId id : ids) EXPECT_TRUE(engine_->EndSegment(id, End(0, kValidFrames, 0)).ok());
    queued.Notify();
    int finals = 0;
    for (const SequenceOutput& output : Collect(kSequences)) {
      if (!output.is_final) continue;
      ++finals;
      EXPECT_EQ(output.token_ids, FakeModelRunner::Greedy(84, 4, 256));
    }
    EXPECT_EQ(finals, kSequences);
    for (SequenceId id : ids) engine_->Release(id);
    engine_->Release(blocker);
    ExpectAllBlocksFree();
    engine_->Stop();
    std::vector<int64_t> positions;
    for (int64_t p : runner_->step_encoder_positions()) {
      if (p > 0) positions.push_back(p);
    }
    return positions;
  }
};

TEST_F(EncoderBudgetTest, FinalsArrivingTogetherSpreadOverSteps) {
  EngineConfig config;
  config.max_step_encoder_positions = 400;  // two 169-position re-encodes a step
  const std::vector<int64_t> positions = RunFinals(config);
  ASSERT_FALSE(positions.empty());
  EXPECT_LE(*std::max_element(positions.begin(), positions.end()), 400);
  EXPECT_EQ(positions.size(), 3u);
  int64_t total = 0;
  for (int64_t p : positions) total += p;
  EXPECT_EQ(total, kSequences * 169);
}

TEST_F(EncoderBudgetTest, TheDefaultBudgetTakesThemInOneStep) {
  const std::vector<int64_t> positions = RunFinals(EngineConfig{});
  EXPECT_EQ(positions, std::vector<int64_t>{kSequences * 169});
}

TEST_F(EncoderBudgetTest, OneSegmentLargerThanTheBudgetStillRuns) {
  EngineConfig config;
  config.max_step_encoder_positions = 100;  // below one re-encode: one a step
  const std::vector<int64_t> positions = RunFinals(config);
  EXPECT_EQ(positions, std::vector<int64_t>(kSequences, 169));
}

TEST(EngineConfigTest, RefusesANonPositiveEncoderBudget) {
  EngineConfig config;
  config.max_step_encoder_positions = 0;
  EXPECT_FALSE(config.Validate().ok());
}

}  // namespace
}  // namespace speechllm::engine
