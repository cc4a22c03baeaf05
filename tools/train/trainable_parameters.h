// Turning a loaded or random Qwen2AudioModel into one the trainer can update: fresh models get
// Whisper's sinusoidal position table (frozen, as in Qwen2-Audio) and zero linear biases; every
// other weight is marked trainable. Called once by the trainer's thread before the first step.
#ifndef SPEECHLLM_TOOLS_TRAIN_TRAINABLE_PARAMETERS_H_
#define SPEECHLLM_TOOLS_TRAIN_TRAINABLE_PARAMETERS_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "engine/model/qwen2_audio_model.h"

namespace speechllm::tools {

// Whisper's sinusoids: [length, channels], sin of position * 10000^(-i / (channels/2 - 1)) for the
// first half of the channels, cos for the second.
at::Tensor Sinusoids(int64_t length, int64_t channels);

struct TrainableParameters {
  std::vector<at::Tensor> tensors;  // requires_grad, shared with the model
  int64_t num_trainable = 0, num_total = 0;
};

// `fresh`: the weights are random (initialise positions and biases); otherwise kept as loaded.
TrainableParameters PrepareForTraining(const engine::Qwen2AudioModel& model, bool fresh);

}  // namespace speechllm::tools

#endif  // SPEECHLLM_TOOLS_TRAIN_TRAINABLE_PARAMETERS_H_
