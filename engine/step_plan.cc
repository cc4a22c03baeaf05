#include "engine/step_plan.h"

#include <algorithm>

namespace speechllm::engine {

int64_t StepPlan::num_tokens() const {
  int64_t tokens = 0;
  for (const PrefillItem& item : prefills) tokens += static_cast<int64_t>(item.token_ids.size());
  return tokens;
}

int64_t StepPlan::num_sequences() const {
  std::vector<SequenceId> ids;
  for (const EncodeItem& item : encodes) ids.push_back(item.id);
  for (const PrefillItem& item : prefills) ids.push_back(item.id);
  std::sort(ids.begin(), ids.end());
  return std::unique(ids.begin(), ids.end()) - ids.begin();
}

}  // namespace speechllm::engine
