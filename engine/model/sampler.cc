#include "engine/model/sampler.h"

namespace speechllm::engine {

std::vector<GreedyChoice> GreedySample(const at::Tensor& logits) {
  const at::Tensor logits32 = logits.to(at::kFloat);
  const auto top = at::topk(logits32, std::min<int64_t>(2, logits32.size(-1)), -1);
  const at::Tensor values = std::get<0>(top).to(at::kCPU).contiguous();
  // topk breaks ties by the lower index only on some backends; argmax is the reference (first
  // maximum).
  const at::Tensor ids = logits32.argmax(-1).to(at::kCPU).contiguous();
  std::vector<GreedyChoice> choices(static_cast<size_t>(ids.size(0)));
  const int64_t k = values.size(-1);
  const float* v = values.data_ptr<float>();
  const int64_t* id = ids.data_ptr<int64_t>();
  for (size_t r = 0; r < choices.size(); ++r) {
    choices[r].token_id = id[r];
    choices[r].margin = k > 1 ? v[r * k] - v[r * k + 1] : 0.0f;
  }
  return choices;
}

}  // namespace speechllm::engine
