// Projector: Qwen2-Audio's multi_modal_projector, one Linear(d_model -> hidden_size, bias) applied
// to the encoder output (MODEL.md 3). Immutable after Load; Forward is const and runs on the model
// thread.
#ifndef SPEECHLLM_ENGINE_MODEL_PROJECTOR_H_
#define SPEECHLLM_ENGINE_MODEL_PROJECTOR_H_

#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/layers.h"
#include "engine/model/model_config.h"

namespace speechllm::engine {

class Projector {
 public:
  static absl::StatusOr<std::unique_ptr<Projector>> Load(const WeightLoader& loader,
                                                         const ModelConfig& config);

  // [..., d_model] -> [..., hidden_size]
  at::Tensor Forward(const at::Tensor& encoder_output) const {
    return linear_.Forward(encoder_output);
  }
  // multi_modal_projector.linear.{weight,bias}, sharing storage with the module.
  std::vector<NamedTensor> Parameters() const {
    std::vector<NamedTensor> out;
    linear_.AppendTo("multi_modal_projector.linear", &out);
    return out;
  }

 private:
  Linear linear_;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_PROJECTOR_H_
