#include "engine/model/qwen2_audio_model.h"

#include <algorithm>
#include <new>

#include <ATen/Context.h>
#include <ATen/Parallel.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/model/device_upload.h"
#include "engine/model/safetensors.h"
#include "engine/model/torch_compat.h"
#include "engine/model/weight_loader.h"
#include "engine/status_macros.h"

namespace speechllm::engine {

absl::Status Qwen2AudioModel::Configure(const RuntimeOptions& options) {
  SPEECHLLM_RETURN_IF_ERROR(options.Validate());
  if (options.num_threads > 0) at::set_num_threads(options.num_threads);
  SPEECHLLM_ASSIGN_OR_RETURN(
      dtype_, ParseScalarType(options.dtype.empty() ? config_.dtype : options.dtype));
  try {
    device_ = at::Device(options.device);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad device \"", options.device, "\": ", e.what_without_backtrace()));
  }
  if (device_.is_cuda() && !at::hasCUDA()) {
    return absl::FailedPreconditionError(absl::StrCat("device ", options.device,
                                                      " requested but this libtorch ",
                                                      "has no CUDA device available"));
  }
  if (device_.is_cuda()) KeepAttentionOffCudnn();
  ConfigureCpuThreads(options);
  if (device_.is_cuda() && dtype_ == at::kFloat) {
    // float32 means IEEE float32 (MODEL.md parity): cuDNN convolutions default to TF32 on Ampere
    // and later, which moved the encoder 3e-4 away from the reference on an H200.
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  log_mel_ = std::make_unique<LogMel>(config_.features);
  return absl::OkStatus();
}

void Qwen2AudioModel::ConfigureCpuThreads(const RuntimeOptions& options) {
  const int intra_op_threads = at::get_num_threads();
  blas_threads_ = BlasThreadPolicy(options.blas_threads, device_.is_cpu(), intra_op_threads);
  threads_summary_ =
      absl::StrCat("CPU threads: libtorch ", intra_op_threads, ", ", blas_threads_.Summary());
}

absl::Status Qwen2AudioModel::LoadModules(const WeightLoader& loader) {
  // Tables the modules build from the config (rotary angles, positions) can fail to allocate:
  // that is an error for the caller, not an abort of the process.
  try {
    SPEECHLLM_ASSIGN_OR_RETURN(encoder_, AudioEncoder::Load(loader, config_.audio));
    SPEECHLLM_ASSIGN_OR_RETURN(projector_, Projector::Load(loader, config_));
    SPEECHLLM_ASSIGN_OR_RETURN(decoder_, Decoder::Load(loader, config_.text));
  } catch (const c10::Error& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat("building the model failed: ", e.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("building the model failed: out of memory");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Qwen2AudioModel>> Qwen2AudioModel::Load(
    const std::string& model_dir, const RuntimeOptions& options) {
  std::unique_ptr<Qwen2AudioModel> model(new Qwen2AudioModel());
  SPEECHLLM_ASSIGN_OR_RETURN(model->config_, ModelConfig::FromDirectory(model_dir));
  SPEECHLLM_RETURN_IF_ERROR(model->Configure(options));
  SPEECHLLM_ASSIGN_OR_RETURN(auto checkpoint, SafetensorsCheckpoint::Open(model_dir));
  const WeightLoader loader(checkpoint.get(), model->dtype_, model->device_);
  SPEECHLLM_RETURN_IF_ERROR(model->LoadModules(loader));
  // A checkpoint with more layers than config.json declares would load the first ones and answer
  // with a truncated model. Other unused tensors (e.g. rotary_emb.inv_freq of older exports) are
  // harmless.
  std::vector<std::string> extra_layers;
  for (std::string& name : loader.UnloadedNames()) {
    if (absl::StrContains(name, ".layers.")) extra_layers.push_back(std::move(name));
  }
  if (!extra_layers.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        model_dir, ": the checkpoint holds ", extra_layers.size(),
        " layer tensors that config.json's layer counts leave unused (first: \"",
        extra_layers.front(), "\"; audio_config.encoder_layers ", model->config_.audio.num_layers,
        ", text_config.num_hidden_layers ", model->config_.text.num_layers,
        "): config.json does not match the checkpoint"));
  }
  return model;
}

absl::StatusOr<std::unique_ptr<Qwen2AudioModel>> Qwen2AudioModel::CreateRandom(
    const ModelConfig& config, const RuntimeOptions& options, uint64_t seed) {
  SPEECHLLM_RETURN_IF_ERROR(config.Validate());
  std::unique_ptr<Qwen2AudioModel> model(new Qwen2AudioModel());
  model->config_ = config;
  SPEECHLLM_RETURN_IF_ERROR(model->Configure(options));
  SPEECHLLM_RETURN_IF_ERROR(
      model->LoadModules(WeightLoader::Random(seed, model->dtype_, model->device_)));
  return model;
}

std::vector<NamedTensor> Qwen2AudioModel::Parameters() const {
  std::vector<NamedTensor> out = encoder_->Parameters();
  std::vector<NamedTensor> projector = projector_->Parameters();
  std::vector<NamedTensor> decoder = decoder_->Parameters();
  out.insert(out.end(), projector.begin(), projector.end());
  out.insert(out.end(), decoder.begin(), decoder.end());
  return out;
}

at::Tensor Qwen2AudioModel::FeaturesTensor(const LogMelFeatures& features) const {
  return UploadTensor(at::from_blob(const_cast<float*>(features.values.data()),
                                    {features.num_mel_bins, features.num_frames},
                                    at::TensorOptions().dtype(at::kFloat)),
                      device_, at::kFloat);
}

at::Tensor Qwen2AudioModel::EncodeClip(const LogMelFeatures& features) const {
  const at::Tensor encoded =
      encoder_->EncodeValidPrefix(FeaturesTensor(features), features.num_valid_frames);
  return projector_->Forward(encoded).to(decoder_->dtype());
}

absl::StatusOr<at::Tensor> Qwen2AudioModel::EmbedPrompt(const std::vector<int64_t>& prompt_ids,
                                                        const at::Tensor& audio_embeddings) const {
  if (absl::Status s = config_.CheckPromptIds(prompt_ids, /*audio_placeholders=*/true); !s.ok())
    return s;
  const int64_t audio_rows =
      std::count(prompt_ids.begin(), prompt_ids.end(), config_.audio_token_id);
  const int64_t audio_available = audio_embeddings.defined() ? audio_embeddings.size(0) : 0;
  if (audio_rows != audio_available) {
    return absl::InvalidArgumentError(absl::StrCat("the prompt has ", audio_rows,
                                                   " audio tokens but the audio yields ",
                                                   audio_available, " embeddings"));
  }
  at::Tensor embeddings = decoder_->Embed(UploadValues(prompt_ids, device_));
  if (audio_rows > 0) {
    // The placeholders' rows, found on the host (a nonzero() on the device would wait for it).
    std::vector<int64_t> rows;
    for (size_t i = 0; i < prompt_ids.size(); ++i) {
      if (prompt_ids[i] == config_.audio_token_id) rows.push_back(static_cast<int64_t>(i));
    }
    embeddings.index_copy_(0, UploadValues(rows, device_),
                           audio_embeddings.to(embeddings.scalar_type()));
  }
  return embeddings;
}

}  // namespace speechllm::engine
