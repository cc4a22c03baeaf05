// SaveCheckpoint: writes a model being trained as a Hugging Face Qwen2-Audio checkpoint directory
// (config.json, generation_config.json, preprocessor_config.json, model.safetensors in float32
// under the published tensor names, and the tokenizer.json it was trained with), then loads the
// config back to check it; AddFloat32Tensor is its tensor encoding, shared with the CTC head file
// (training_objective.h). Called by the trainer's thread between steps.
#ifndef SPEECHLLM_TOOLS_TRAIN_CHECKPOINT_WRITER_H_
#define SPEECHLLM_TOOLS_TRAIN_CHECKPOINT_WRITER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/model/qwen2_audio_model.h"
#include "engine/model/safetensors_writer.h"

namespace speechllm::tools {

struct CheckpointInfo {
  std::string tokenizer_json;          // path of the tokenizer.json to copy
  std::vector<int64_t> eos_token_ids;  // <|im_end|>, <|endoftext|>
  std::string note;                    // safetensors metadata "speechllm_training"
};

// config.json text for `config` (transformers-5 style, as models/qwen2-audio-tiny).
std::string ConfigJson(const engine::ModelConfig& config,
                       const std::vector<int64_t>& eos_token_ids);

// Adds `tensor` (any device and floating dtype) to `writer` as float32 under `name`.
absl::Status AddFloat32Tensor(const std::string& name, const at::Tensor& tensor,
                              engine::SafetensorsWriter* writer);

absl::Status SaveCheckpoint(const engine::Qwen2AudioModel& model, const CheckpointInfo& info,
                            const std::string& out_dir);

}  // namespace speechllm::tools

#endif  // SPEECHLLM_TOOLS_TRAIN_CHECKPOINT_WRITER_H_
