// Greedy sampling: argmax of the logits in float32 (transformers casts the last logits to float32
// before argmax, MODEL.md 9.12), with the top-1 minus top-2 margin for diagnosing near ties and
// log-probabilities (log-softmax in float32) for a final's confidence. Stateless; called on the
// thread that runs the model.
#ifndef SPEECHLLM_ENGINE_MODEL_SAMPLER_H_
#define SPEECHLLM_ENGINE_MODEL_SAMPLER_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace speechllm::engine {

struct GreedyChoice {
  int64_t token_id = 0;
  float margin = 0;           // top-1 logit minus top-2 logit, in float32
  float log_probability = 0;  // of token_id
  // Of the row's scored id (GreedySample's `scored_ids`), or of token_id when it has none.
  float scored_log_probability = 0;
};

// One choice per row of `logits` [rows, vocab_size]. `scored_ids`, empty or one per row, names a
// token whose log-probability the row reports besides its choice's (-1: none), e.g. the draft
// token a verifying row checks.
std::vector<GreedyChoice> GreedySample(const at::Tensor& logits,
                                       const std::vector<int64_t>& scored_ids = {});

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_SAMPLER_H_
