#include "server/engine_health.h"

#include "absl/strings/str_cat.h"

namespace speechllm::server {

void EngineHealth::OnStep(const engine::StepRecord& step) {
  if (next_ != nullptr) next_->OnStep(step);
  absl::MutexLock lock(&mu_);
  const bool was_stalled = stalled_;
  failed_in_a_row_ = step.any_failed() ? failed_in_a_row_ + 1 : 0;
  stalled_ = false;  // a step came back
  const bool healthy = failed_in_a_row_ < kFailedStepsInARow;
  // The reason is the change's: a stalled step that comes back failed is one failure, not three.
  SetLocked(healthy, !healthy ? absl::StrCat(kFailedStepsInARow, " engine steps in a row failed")
                     : was_stalled
                         ? (step.any_failed() ? "the stalled engine step came back, failed"
                                              : "the stalled engine step came back")
                         : "an engine step succeeded again");
}

void EngineHealth::SetLocked(bool healthy, const std::string& why) {
  if (healthy == healthy_) return;
  healthy_ = healthy;
  if (on_change_) on_change_(healthy, why);
}

void EngineHealth::WatchForStalls(std::function<absl::Duration()> running_step_time,
                                  absl::Duration stall, absl::Duration period) {
  StopWatching();
  {
    absl::MutexLock lock(&mu_);
    stop_watching_ = false;
  }
  watchdog_ = std::thread([this, running_step_time = std::move(running_step_time), stall, period] {
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_watching_; };
    while (!mu_.AwaitWithTimeout(absl::Condition(&stopping), period)) {
      const absl::Duration running = running_step_time();
      if (running > stall && !stalled_) {
        stalled_ = true;
        SetLocked(false, absl::StrCat("an engine step has run for ", absl::FormatDuration(running),
                                      " (stalled: the device or the model hangs)"));
      }
    }
  });
}

void EngineHealth::StopWatching() {
  if (!watchdog_.joinable()) return;
  {
    absl::MutexLock lock(&mu_);
    stop_watching_ = true;
  }
  watchdog_.join();
}

}  // namespace speechllm::server
