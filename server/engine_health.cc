#include "server/engine_health.h"

namespace speechllm::server {

void EngineHealth::OnStep(const engine::StepRecord& step) {
  if (next_ != nullptr) next_->OnStep(step);
  failed_in_a_row_ = step.ok ? 0 : failed_in_a_row_ + 1;
  const bool healthy = failed_in_a_row_ < kFailedStepsInARow;
  if (healthy == healthy_) return;
  healthy_ = healthy;
  if (on_change_) on_change_(healthy);
}

}  // namespace speechllm::server
