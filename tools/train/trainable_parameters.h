// Turning a loaded or random Qwen2AudioModel into one the trainer can update: fresh models get
// Whisper's sinusoidal position table (frozen, as in Qwen2-Audio), zero linear biases and unit-gain
// conv stem weights; every other weight is marked trainable. Called once by the trainer's thread
// before the first step.
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
// `position_scale` multiplies the sinusoids: at full scale they outweigh the clip-dependent part of
// the conv stem output, the encoder output is nearly the same for every clip (cosine 0.96 at
// initialisation) and training collapsed it to a constant (0.998) instead of learning.
TrainableParameters PrepareForTraining(const engine::Qwen2AudioModel& model, bool fresh,
                                       double position_scale = 1.0);

}  // namespace speechllm::tools

#endif  // SPEECHLLM_TOOLS_TRAIN_TRAINABLE_PARAMETERS_H_
