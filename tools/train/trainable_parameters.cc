#include "tools/train/trainable_parameters.h"

#include <cmath>

#include "absl/strings/match.h"

namespace speechllm::tools {

at::Tensor Sinusoids(int64_t length, int64_t channels) {
  const double increment = std::log(10000.0) / (channels / 2 - 1);
  const at::Tensor inv = at::exp(-increment * at::arange(channels / 2, at::kDouble));
  const at::Tensor scaled = at::arange(length, at::kDouble).unsqueeze(1) * inv.unsqueeze(0);
  return at::cat({scaled.sin(), scaled.cos()}, 1).to(at::kFloat);
}

TrainableParameters PrepareForTraining(const engine::Qwen2AudioModel& model, bool fresh) {
  TrainableParameters out;
  at::NoGradGuard no_grad;
  for (const engine::NamedTensor& named : model.Parameters()) {
    out.num_total += named.tensor.numel();
    if (named.name == "audio_tower.embed_positions.weight") {
      if (fresh) named.tensor.copy_(Sinusoids(named.tensor.size(0), named.tensor.size(1)));
      continue;  // frozen
    }
    if (fresh && absl::EndsWith(named.name, ".bias") && !absl::StrContains(named.name, "norm"))
      named.tensor.zero_();
    named.tensor.set_requires_grad(true);
    out.tensors.push_back(named.tensor);
    out.num_trainable += named.tensor.numel();
  }
  return out;
}

}  // namespace speechllm::tools
