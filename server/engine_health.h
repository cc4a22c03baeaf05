// EngineHealth: watches every engine step and reports the engine unhealthy once
// kFailedStepsInARow steps in a row have failed a stream, all of theirs or some alone (API.md 3:
// a device failure turns health NOT_SERVING; a bad stream fails itself in one step, a broken
// device or model fails streams in every step), or while a step has run longer than the stall
// limit (a hung device returns no step at all), and healthy again after a step fails none. Every
// step also goes on to the next observer (the metrics). Owned by main.cc; OnStep runs on the
// engine loop thread, the stall check on its own watchdog thread; `on_change` on either.
#ifndef SPEECHLLM_SERVER_ENGINE_HEALTH_H_
#define SPEECHLLM_SERVER_ENGINE_HEALTH_H_

#include <functional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/step_observer.h"

namespace speechllm::server {

class EngineHealth : public engine::StepObserver {
 public:
  static constexpr int kFailedStepsInARow = 3;

  // `next` may be null; `on_change(healthy, why)` is called at each change, quickly, without
  // blocking, with a sentence saying why.
  EngineHealth(engine::StepObserver* next,
               std::function<void(bool healthy, const std::string& why)> on_change)
      : next_(next), on_change_(std::move(on_change)) {}
  ~EngineHealth() override { StopWatching(); }

  void OnStep(const engine::StepRecord& step) override;

  // Starts the watchdog: every `period` it asks `running_step_time` (Engine::RunningStepTime) and
  // reports the engine unhealthy while a step has run longer than `stall`, until a step completes.
  void WatchForStalls(std::function<absl::Duration()> running_step_time, absl::Duration stall,
                      absl::Duration period = absl::Seconds(1));
  // Stops and joins the watchdog (before the engine it asks goes). Idempotent.
  void StopWatching();

 private:
  // Reports `healthy` with `why` when it differs from the last report.
  void SetLocked(bool healthy, const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  engine::StepObserver* const next_;
  const std::function<void(bool, const std::string&)> on_change_;
  absl::Mutex mu_;
  int failed_in_a_row_ ABSL_GUARDED_BY(mu_) = 0;
  bool stalled_ ABSL_GUARDED_BY(mu_) = false;
  bool healthy_ ABSL_GUARDED_BY(mu_) = true;
  bool stop_watching_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watchdog_;  // started and joined on main()'s thread
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_ENGINE_HEALTH_H_
