// ExecuteIsolatingFailures: reruns a failed step of several sequences in halves; see the header.
#include "engine/step_isolation.h"

#include <utility>

#include "absl/container/flat_hash_set.h"

namespace speechllm::engine {
namespace {

// A part of the whole plan and where its items stand in it.
struct Part {
  StepPlan plan;
  std::vector<size_t> encode_index, prefill_index;  // into the whole plan's items
};

Part MakePart(const StepPlan& plan, const std::vector<SequenceId>& ids) {
  const absl::flat_hash_set<SequenceId> wanted(ids.begin(), ids.end());
  Part part;
  part.plan.live_sequences = plan.live_sequences;
  for (size_t i = 0; i < plan.encodes.size(); ++i) {
    if (!wanted.contains(plan.encodes[i].id)) continue;
    part.plan.encodes.push_back(plan.encodes[i]);
    part.encode_index.push_back(i);
  }
  for (size_t i = 0; i < plan.prefills.size(); ++i) {
    if (!wanted.contains(plan.prefills[i].id)) continue;
    part.plan.prefills.push_back(plan.prefills[i]);
    part.prefill_index.push_back(i);
  }
  return part;
}

// Runs parts of a failed plan and merges what they return into one result in the plan's order.
class Isolation {
 public:
  Isolation(ModelRunner& runner, const StepPlan& plan) : runner_(runner), plan_(plan) {
    merged_.choices.resize(plan.prefills.size());
    merged_.audio_tokens.resize(plan.encodes.size());
  }

  // Runs `ids` as two halves (their step as a whole has failed already).
  void RunHalves(const std::vector<SequenceId>& ids) {
    const auto middle = ids.begin() + static_cast<std::ptrdiff_t>(ids.size() / 2);
    Run(std::vector<SequenceId>(ids.begin(), middle));
    Run(std::vector<SequenceId>(middle, ids.end()));
  }

  StepResult& merged() { return merged_; }
  int64_t executions() const { return executions_; }

 private:
  void Run(const std::vector<SequenceId>& ids) {
    Part part = MakePart(plan_, ids);
    absl::StatusOr<StepResult> result = runner_.Execute(part.plan);
    ++executions_;
    if (result.ok() && result->choices.size() != part.prefill_index.size()) {
      result = absl::InternalError("runner returned a result of the wrong size");
    }
    if (result.ok()) {
      Place(part, *std::move(result));
    } else if (ids.size() == 1) {
      merged_.failed_sequences.push_back({ids[0], result.status()});
    } else {
      RunHalves(ids);
    }
  }

  void Place(const Part& part, StepResult result) {
    for (size_t k = 0; k < part.prefill_index.size(); ++k) {
      merged_.choices[part.prefill_index[k]] = std::move(result.choices[k]);
    }
    for (size_t k = 0; k < part.encode_index.size(); ++k) {
      const size_t i = part.encode_index[k];
      if (k < result.audio_tokens.size()) merged_.audio_tokens[i] = result.audio_tokens[k];
      if (k < result.returned_embeddings.size() && !result.returned_embeddings[k].empty()) {
        merged_.returned_embeddings.resize(plan_.encodes.size());
        merged_.returned_embeddings[i] = std::move(result.returned_embeddings[k]);
      }
    }
    merged_.encoder_time += result.encoder_time;
    merged_.decoder_time += result.decoder_time;
    merged_.wait_time += result.wait_time;
    merged_.decode_graph = merged_.decode_graph || result.decode_graph;
  }

  ModelRunner& runner_;
  const StepPlan& plan_;
  StepResult merged_;
  int64_t executions_ = 0;
};

}  // namespace

StepPlan PartOf(const StepPlan& plan, const std::vector<SequenceId>& ids) {
  return MakePart(plan, ids).plan;
}

absl::StatusOr<StepResult> ExecuteIsolatingFailures(ModelRunner& runner, const StepPlan& plan,
                                                    int64_t* executions) {
  if (executions != nullptr) *executions = 1;
  absl::StatusOr<StepResult> whole = runner.Execute(plan);
  if (whole.ok() || !plan.block_copies.empty()) return whole;
  const std::vector<SequenceId> ids = plan.sequence_ids();
  if (ids.size() < 2) return whole;
  Isolation isolation(runner, plan);
  isolation.RunHalves(ids);
  if (executions != nullptr) *executions += isolation.executions();
  return std::move(isolation.merged());
}

}  // namespace speechllm::engine
