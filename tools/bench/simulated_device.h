// speechllm-bench's simulated device (--simulate_step_cost): the toy FakeModelRunner with a step
// cost model, so the scheduler can be studied under a GPU's step times on any machine (the toy
// model's text, not a real one's). The benchmark's main thread builds it; the engine loop runs it.
#ifndef SPEECHLLM_TOOLS_BENCH_SIMULATED_DEVICE_H_
#define SPEECHLLM_TOOLS_BENCH_SIMULATED_DEVICE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/fake_model_runner.h"

namespace speechllm::bench {

// "BASE,DECODE_ROW,PREFILL_TOKEN,ENCODER_POSITION", milliseconds, each >= 0, optionally followed
// by ",EVERY,OUTLIER": every EVERY-th step (a whole number >= 1) takes OUTLIER ms more.
absl::StatusOr<engine::FakeModelRunner::Options::StepCost> ParseStepCost(absl::string_view text);

// A FakeModelRunner with that cost and KV room for far more streams than a benchmark runs.
absl::StatusOr<std::unique_ptr<engine::ModelRunner>> MakeSimulatedDevice(absl::string_view cost);

}  // namespace speechllm::bench

#endif  // SPEECHLLM_TOOLS_BENCH_SIMULATED_DEVICE_H_
