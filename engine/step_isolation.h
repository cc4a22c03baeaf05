// ExecuteIsolatingFailures: runs a step on the ModelRunner and, when a step of several sequences
// fails, runs its sequences again in halves (recursively) so that only the sequences whose own
// work fails are failed, and the others' results stand (API.md 3: INTERNAL "for that stream
// only"). Called by the Engine's loop thread for every step.
#ifndef SPEECHLLM_ENGINE_STEP_ISOLATION_H_
#define SPEECHLLM_ENGINE_STEP_ISOLATION_H_

#include <vector>

#include "absl/status/statusor.h"
#include "engine/model_runner.h"
#include "engine/step_plan.h"

namespace speechllm::engine {

// The step's result. When `plan` failed as a whole and holds work of several sequences (and no
// block copies, whose sources another sequence of the step may have written before it failed), the
// result is merged from reruns: each sequence's choices come from the smaller step that ran it,
// and a sequence whose own step of one sequence failed is listed in `failed_sequences` with that
// step's status, every sequence of the step when all fail (a failing device). One bad
// sequence among N costs at most 2 ceil(log2(N)) more runner calls; a device that fails every call,
// 2N - 2. `executions`, when set, receives the number of ModelRunner::Execute calls.
absl::StatusOr<StepResult> ExecuteIsolatingFailures(ModelRunner& runner, const StepPlan& plan,
                                                    int64_t* executions = nullptr);

// The part of `plan` (without block copies) that belongs to `ids`: their encoder and prefill
// items in plan order.
StepPlan PartOf(const StepPlan& plan, const std::vector<SequenceId>& ids);

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_STEP_ISOLATION_H_
