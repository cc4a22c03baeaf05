#include "server/engine_health.h"

#include "absl/strings/str_cat.h"

namespace speechllm::server {

void EngineHealth::OnStep(const engine::StepRecord& step) {
  if (next_ != nullptr) next_->OnStep(step);
  absl::MutexLock lock(&mu_);
  failed_in_a_row_ = step.ok ? 0 : failed_in_a_row_ + 1;
  stalled_ = false;  // a step came back
  UpdateLocked(step.ok ? "an engine step succeeded again"
                       : absl::StrCat(kFailedStepsInARow, " engine steps in a row failed"));
}

void EngineHealth::UpdateLocked(const std::string& why) {
  const bool healthy = failed_in_a_row_ < kFailedStepsInARow && !stalled_;
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
        UpdateLocked(absl::StrCat("an engine step has run for ", absl::FormatDuration(running),
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
