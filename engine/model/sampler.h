// Greedy sampling: argmax of the logits in float32 (transformers casts the last logits to float32
// before argmax, MODEL.md 9.12), with the top-1 minus top-2 margin for diagnosing near ties.
// Stateless; called on the thread that runs the model.
#ifndef SPEECHLLM_ENGINE_MODEL_SAMPLER_H_
#define SPEECHLLM_ENGINE_MODEL_SAMPLER_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace speechllm::engine {

struct GreedyChoice {
  int64_t token_id = 0;
  float margin = 0;  // top-1 logit minus top-2 logit, in float32
};

// One choice per row of `logits` [rows, vocab_size].
std::vector<GreedyChoice> GreedySample(const at::Tensor& logits);

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_SAMPLER_H_
