#include "tools/train/trainable_parameters.h"

#include <cmath>

#include <ATen/core/grad_mode.h>

#include "absl/strings/match.h"

namespace speechllm::tools {

at::Tensor Sinusoids(int64_t length, int64_t channels) {
  const double increment = std::log(10000.0) / (channels / 2 - 1);
  const at::Tensor inv = at::exp(-increment * at::arange(channels / 2, at::kDouble));
  const at::Tensor scaled = at::arange(length, at::kDouble).unsqueeze(1) * inv.unsqueeze(0);
  return at::cat({scaled.sin(), scaled.cos()}, 1).to(at::kFloat);
}

TrainableParameters PrepareForTraining(const engine::Qwen2AudioModel& model, bool fresh,
                                       double position_scale) {
  TrainableParameters out;
  at::NoGradGuard no_grad;
  for (const engine::NamedTensor& named : model.Parameters()) {
    out.num_total += named.tensor.numel();
    if (named.name == "audio_tower.embed_positions.weight") {
      if (fresh) {
        named.tensor.copy_(Sinusoids(named.tensor.size(0), named.tensor.size(1)) * position_scale);
      }
      continue;  // frozen
    }
    if (fresh && absl::EndsWith(named.name, ".bias") && !absl::StrContains(named.name, "norm"))
      named.tensor.zero_();
    if (fresh && absl::StartsWith(named.name, "audio_tower.conv") &&
        absl::EndsWith(named.name, ".weight")) {
      // Unit gain (std 1/sqrt(fan_in)) instead of 0.02: with 0.02 the conv stem's output is ~15x
      // smaller than the sinusoids it is added to, and the encoder learned nothing in 500 steps.
      const int64_t fan_in = named.tensor.size(1) * named.tensor.size(2);
      named.tensor.normal_(0.0, 1.0 / std::sqrt(static_cast<double>(fan_in)));
    }
    named.tensor.set_requires_grad(true);
    out.tensors.push_back(named.tensor);
    out.num_trainable += named.tensor.numel();
  }
  return out;
}

}  // namespace speechllm::tools
