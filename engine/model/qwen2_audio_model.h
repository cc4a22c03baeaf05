// Qwen2AudioModel: a loaded Qwen2-Audio checkpoint (config, log-mel front end, audio encoder,
// projector, decoder) on one device in one dtype, plus the glue between them: features -> audio
// embeddings, and prompt ids -> input embeddings with the audio rows scattered in (MODEL.md 3).
// Immutable after Load; the thread that runs the model calls it (offline tools, the engine loop).
#ifndef SPEECHLLM_ENGINE_MODEL_QWEN2_AUDIO_MODEL_H_
#define SPEECHLLM_ENGINE_MODEL_QWEN2_AUDIO_MODEL_H_

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/audio_encoder.h"
#include "engine/model/blas_threads.h"
#include "engine/model/decoder.h"
#include "engine/model/log_mel.h"
#include "engine/model/model_config.h"
#include "engine/model/projector.h"
#include "engine/model/runtime_options.h"
#include "engine/model/weight_loader.h"

namespace speechllm::engine {

class Qwen2AudioModel {
 public:
  // Reads config.json (+ generation/preprocessor configs) and the safetensors weights of
  // `model_dir`. The dtype is options.dtype or the checkpoint's. Errors name the file or tensor at
  // fault; torch failures (for example no CUDA device) are INTERNAL / FAILED_PRECONDITION.
  static absl::StatusOr<std::unique_ptr<Qwen2AudioModel>> Load(const std::string& model_dir,
                                                               const RuntimeOptions& options);
  // A model of `config`'s shapes with random weights (WeightLoader::Random), for benchmarks.
  static absl::StatusOr<std::unique_ptr<Qwen2AudioModel>> CreateRandom(
      const ModelConfig& config, const RuntimeOptions& options, uint64_t seed);

  const ModelConfig& config() const { return config_; }
  const LogMel& log_mel() const { return *log_mel_; }
  const AudioEncoder& encoder() const { return *encoder_; }
  const Projector& projector() const { return *projector_; }
  const Decoder& decoder() const { return *decoder_; }
  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }
  // "CPU threads: libtorch N, OpenBLAS M (...)", for start-up logs.
  const std::string& threads_summary() const { return threads_summary_; }
  // RuntimeOptions::blas_threads' policy; the runner applies it before each step.
  BlasThreadPolicy& blas_threads() { return blas_threads_; }

  // Every weight of the encoder, projector and decoder under its checkpoint name, sharing storage
  // with the modules (the trainer updates them in place; SafetensorsWriter saves them).
  std::vector<NamedTensor> Parameters() const;

  // Features (ExtractValidPrefix) as a float32 tensor [num_mel_bins, frames] on the model's device.
  at::Tensor FeaturesTensor(const LogMelFeatures& features) const;
  // Projected audio embeddings [AudioTokenCount(valid frames), hidden_size] of one clip.
  at::Tensor EncodeClip(const LogMelFeatures& features) const;
  // Token embeddings of `prompt_ids` with the rows of audio_token_id replaced, in order, by the
  // rows of `audio_embeddings`. INVALID_ARGUMENT when the counts differ.
  absl::StatusOr<at::Tensor> EmbedPrompt(const std::vector<int64_t>& prompt_ids,
                                         const at::Tensor& audio_embeddings) const;

 private:
  Qwen2AudioModel() = default;
  // Device, dtype and threads from `options`; the config must be set.
  absl::Status Configure(const RuntimeOptions& options);
  // OpenBLAS's threads per options.blas_threads (device cpu only) and threads_summary_.
  void ConfigureCpuThreads(const RuntimeOptions& options);
  absl::Status LoadModules(const WeightLoader& loader);

  ModelConfig config_;
  at::ScalarType dtype_ = at::kFloat;
  at::Device device_ = at::kCPU;
  std::string threads_summary_;
  BlasThreadPolicy blas_threads_;
  std::unique_ptr<LogMel> log_mel_;
  std::unique_ptr<AudioEncoder> encoder_;
  std::unique_ptr<Projector> projector_;
  std::unique_ptr<Decoder> decoder_;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_QWEN2_AUDIO_MODEL_H_
