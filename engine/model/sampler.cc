#include "engine/model/sampler.h"

#include "c10/util/Exception.h"
#include "engine/model/device_upload.h"

namespace speechllm::engine {

std::vector<GreedyChoice> GreedySample(const at::Tensor& logits,
                                       const std::vector<int64_t>& scored_ids) {
  const at::Tensor logits32 = logits.to(at::kFloat);
  const int64_t rows = logits32.size(0);
  TORCH_CHECK(scored_ids.empty() || static_cast<int64_t>(scored_ids.size()) == rows,
              "GreedySample: ", scored_ids.size(), " scored ids for ", rows, " rows");
  // topk breaks ties by the lower index only on some backends; argmax is the reference (first
  // maximum).
  const at::Tensor ids = logits32.argmax(-1);
  const auto top = at::topk(logits32, std::min<int64_t>(2, logits32.size(-1)), -1);
  const at::Tensor top_values = std::get<0>(top);
  const at::Tensor log_normalizer = at::logsumexp(logits32, -1);
  at::Tensor scored = ids;
  if (!scored_ids.empty()) {
    const at::Tensor wanted = UploadValues(scored_ids, logits32.device());
    scored = at::where(wanted >= 0, wanted, ids);
  }
  // One host copy (one device sync) of every per-row value: the choice (exact in float32 below
  // 2^24, checked), top-1, top-2 (or top-1 again), log normalizer, the scored token's logit.
  TORCH_CHECK(logits32.size(-1) <= (int64_t{1} << 24), "GreedySample: vocabulary too large");
  const at::Tensor second =
      top_values.size(-1) > 1 ? top_values.select(-1, 1) : top_values.select(-1, 0);
  const at::Tensor values =
      at::stack({ids.to(at::kFloat), top_values.select(-1, 0), second, log_normalizer,
                 logits32.gather(-1, scored.unsqueeze(-1)).squeeze(-1)},
                1)
          .to(at::kCPU)
          .contiguous();
  std::vector<GreedyChoice> choices(static_cast<size_t>(rows));
  const float* v = values.data_ptr<float>();
  for (int64_t r = 0; r < rows; ++r) {
    GreedyChoice& choice = choices[static_cast<size_t>(r)];
    const float* row = v + 5 * r;
    choice.token_id = static_cast<int64_t>(row[0]);
    choice.margin = row[1] - row[2];
    choice.log_probability = row[1] - row[3];
    choice.scored_log_probability = row[4] - row[3];
  }
  return choices;
}

}  // namespace speechllm::engine
