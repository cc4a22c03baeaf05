#include "engine/step_plan.h"

namespace speechllm::engine {

int64_t StepPlan::num_tokens() const {
  int64_t tokens = 0;
  for (const PrefillItem& item : prefills) tokens += static_cast<int64_t>(item.token_ids.size());
  return tokens;
}

}  // namespace speechllm::engine
