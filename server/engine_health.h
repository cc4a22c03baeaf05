// EngineHealth: watches every engine step and reports the engine unhealthy once
// kFailedStepsInARow steps in a row have failed (API.md 3: a device failure turns health
// NOT_SERVING; a bad stream fails only the step it was in, a broken device or model fails every
// one), healthy again after a step succeeds. Every step also goes on to the next observer (the
// metrics). Owned by main.cc; OnStep runs on the engine loop thread, as does `on_change`.
#ifndef SPEECHLLM_SERVER_ENGINE_HEALTH_H_
#define SPEECHLLM_SERVER_ENGINE_HEALTH_H_

#include <functional>

#include "engine/step_observer.h"

namespace speechllm::server {

class EngineHealth : public engine::StepObserver {
 public:
  static constexpr int kFailedStepsInARow = 3;

  // `next` may be null; `on_change(healthy)` is called at each change, quickly, without blocking.
  EngineHealth(engine::StepObserver* next, std::function<void(bool healthy)> on_change)
      : next_(next), on_change_(std::move(on_change)) {}

  void OnStep(const engine::StepRecord& step) override;

 private:
  engine::StepObserver* const next_;
  const std::function<void(bool)> on_change_;
  int failed_in_a_row_ = 0;  // engine loop thread only
  bool healthy_ = true;
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_ENGINE_HEALTH_H_
