#include "engine/step_plan.h"

#include "absl/container/flat_hash_set.h"

namespace speechllm::engine {

int64_t StepPlan::num_tokens() const {
  int64_t tokens = 0;
  for (const PrefillItem& item : prefills) tokens += static_cast<int64_t>(item.token_ids.size());
  return tokens;
}

std::vector<SequenceId> StepPlan::sequence_ids() const {
  std::vector<SequenceId> ids;
  absl::flat_hash_set<SequenceId> seen;
  for (const EncodeItem& item : encodes) {
    if (seen.insert(item.id).second) ids.push_back(item.id);
  }
  for (const PrefillItem& item : prefills) {
    if (seen.insert(item.id).second) ids.push_back(item.id);
  }
  return ids;
}

}  // namespace speechllm::engine
