#include "engine/model/projector.h"

#include "engine/status_macros.h"

namespace speechllm::engine {

absl::StatusOr<std::unique_ptr<Projector>> Projector::Load(const WeightLoader& loader,
                                                           const ModelConfig& config) {
  auto projector = std::make_unique<Projector>();
  SPEECHLLM_ASSIGN_OR_RETURN(
      projector->linear_, Linear::Load(loader, "multi_modal_projector.linear", config.audio.d_model,
                                       config.text.hidden_size, true));
  return projector;
}

}  // namespace speechllm::engine
