// EngineHealth (server/engine_health.h, label unit): failed steps in a row and a step that runs
// past the stall limit turn health NOT_SERVING; a step that comes back turns it SERVING again.
#include "server/engine_health.h"

#include <atomic>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/metrics.h"
#include "tests/integration/ops/ops_harness.h"

namespace speechllm::server {
namespace {

using opstest::ParseMetrics;
using opstest::Value;

// API.md 3: a device failure turns health NOT_SERVING. Failed steps in a row (every stream failing)
// do; a single failed step (one bad stream) does not; a step that succeeds turns health back.
TEST(EngineHealthTest, FailedStepsInARowTurnHealthNotServing) {
  Metrics metrics("test");
  std::vector<bool> changes;
  EngineHealth health(&metrics,
                      [&changes](bool healthy, const std::string&) { changes.push_back(healthy); });
  engine::StepRecord failed;
  failed.ok = false;
  engine::StepRecord ok;
  // A step that ran again in parts after failing, where one stream failed alone: a device that
  // fails some kinds of work (every encoder pass, say) fails streams this way in every step.
  engine::StepRecord failed_alone;
  failed_alone.failed_sequences = 1;
  failed_alone.executions = 3;
  for (const engine::StepRecord* step : {&failed, &failed_alone, &ok, &failed, &failed}) {
    health.OnStep(*step);
  }
  EXPECT_TRUE(changes.empty()) << "two failures in a row are not a device failure";
  health.OnStep(failed);
  ASSERT_EQ(changes, std::vector<bool>{false});
  health.OnStep(failed);  // still failing: no second change
  health.OnStep(ok);
  EXPECT_EQ(changes, (std::vector<bool>{false, true}));
  // Every step reached the metrics behind it.
  auto samples = ParseMetrics(metrics.Scrape());
  ASSERT_TRUE(samples.ok());
  EXPECT_EQ(Value(*samples, "speechllm_engine_step_duration_seconds_count"), 8);
  EXPECT_EQ(Value(*samples, "speechllm_engine_step_failures_total"), 6);
}

// A step that never returns reports no failure: the watchdog turns health NOT_SERVING once one has
// run past the stall limit, and the next step that comes back turns it SERVING again.
TEST(EngineHealthTest, AStepThatRunsPastTheStallLimitTurnsHealthNotServing) {
  absl::Mutex mu;
  std::vector<std::pair<bool, std::string>> changes;
  std::atomic<int64_t> running_ms{0};
  EngineHealth health(nullptr, [&](bool healthy, const std::string& why) {
    absl::MutexLock lock(&mu);
    changes.emplace_back(healthy, why);
  });
  health.WatchForStalls([&] { return absl::Milliseconds(running_ms.load()); },
                        /*stall=*/absl::Seconds(10), /*period=*/absl::Milliseconds(5));
  auto count = [&] {
    absl::MutexLock lock(&mu);
    return changes.size();
  };
  running_ms = 9000;  // long, within the limit
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(count(), 0u);
  running_ms = 10500;
  for (int i = 0; i < 400 && count() == 0; ++i) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_EQ(count(), 1u);
  running_ms = 0;  // the step came back
  engine::StepRecord ok;
  health.OnStep(ok);
  health.StopWatching();
  absl::MutexLock lock(&mu);
  for (const auto& [healthy, why] : changes)
    std::printf("%s: %s\n", healthy ? "SERVING" : "NOT_SERVING", why.c_str());
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_FALSE(changes[0].first);
  EXPECT_NE(changes[0].second.find("stalled"), std::string::npos);
  EXPECT_TRUE(changes[1].first);
}

}  // namespace
}  // namespace speechllm::server
