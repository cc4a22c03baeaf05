#include "tools/train/checkpoint_writer.h"

#include <filesystem>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/model/safetensors_writer.h"
#include "nlohmann/json.hpp"

namespace speechllm::tools {
namespace {

using json = nlohmann::ordered_json;

absl::Status WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

}  // namespace

std::string ConfigJson(const engine::ModelConfig& config,
                       const std::vector<int64_t>& eos_token_ids) {
  const engine::AudioEncoderConfig& audio = config.audio;
  const engine::TextConfig& text = config.text;
  json audio_json = {{"activation_dropout", 0.0},
                     {"activation_function", "gelu"},
                     {"attention_dropout", 0.0},
                     {"d_model", audio.d_model},
                     {"dropout", 0.0},
                     {"encoder_attention_heads", audio.num_heads},
                     {"encoder_ffn_dim", audio.ffn_dim},
                     {"encoder_layerdrop", 0.0},
                     {"encoder_layers", audio.num_layers},
                     {"initializer_range", 0.02},
                     {"max_source_positions", audio.max_source_positions},
                     {"model_type", "qwen2_audio_encoder"},
                     {"num_mel_bins", audio.num_mel_bins},
                     {"scale_embedding", false}};
  json layer_types = json::array();
  for (int i = 0; i < text.num_layers; ++i) layer_types.push_back("full_attention");
  json text_json = {
      {"attention_dropout", 0.0},
      {"bos_token_id", nullptr},
      {"eos_token_id", eos_token_ids.empty() ? json(nullptr) : json(eos_token_ids[0])},
      {"hidden_act", "silu"},
      {"hidden_size", text.hidden_size},
      {"initializer_range", 0.02},
      {"intermediate_size", text.intermediate_size},
      {"layer_types", layer_types},
      {"max_position_embeddings", text.max_position_embeddings},
      {"max_window_layers", text.num_layers},
      {"model_type", "qwen2"},
      {"num_attention_heads", text.num_heads},
      {"num_hidden_layers", text.num_layers},
      {"num_key_value_heads", text.num_kv_heads},
      {"pad_token_id", nullptr},
      {"rms_norm_eps", text.rms_norm_eps},
      {"rope_parameters", {{"rope_theta", text.rope_theta}, {"rope_type", "default"}}},
      {"sliding_window", nullptr},
      {"tie_word_embeddings", text.tie_word_embeddings},
      {"use_cache", true},
      {"use_sliding_window", false},
      {"vocab_size", text.vocab_size}};
  json root = {{"architectures", {"Qwen2AudioForConditionalGeneration"}},
               {"audio_config", audio_json},
               {"audio_token_index", config.audio_token_id},
               {"dtype", "float32"},
               {"model_type", "qwen2_audio"},
               {"text_config", text_json},
               {"transformers_version", "5.17.0"}};
  return root.dump(2) + "\n";
}

absl::Status AddFloat32Tensor(const std::string& name, const at::Tensor& tensor,
                              engine::SafetensorsWriter* writer) {
  const at::Tensor values = tensor.detach().to(at::kCPU, at::kFloat).contiguous();
  std::string bytes(static_cast<const char*>(values.data_ptr()), values.nbytes());
  return writer->Add(name, engine::DType::kF32, values.sizes().vec(), std::move(bytes));
}

absl::Status SaveCheckpoint(const engine::Qwen2AudioModel& model, const CheckpointInfo& info,
                            const std::string& out_dir) {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::create_directories(out_dir, error);
  if (error) return absl::InternalError(absl::StrCat("cannot create ", out_dir));
  engine::SafetensorsWriter writer;
  for (const engine::NamedTensor& named : model.Parameters()) {
    if (absl::Status added = AddFloat32Tensor(named.name, named.tensor, &writer); !added.ok())
      return added;
  }
  writer.SetMetadata("format", "pt");
  if (!info.note.empty()) writer.SetMetadata("speechllm_training", info.note);
  if (absl::Status s = writer.WriteFile(out_dir + "/model.safetensors"); !s.ok()) return s;
  if (absl::Status s =
          WriteText(out_dir + "/config.json", ConfigJson(model.config(), info.eos_token_ids));
      !s.ok())
    return s;
  json generation = {{"eos_token_id", info.eos_token_ids}, {"transformers_version", "5.17.0"}};
  if (absl::Status s = WriteText(out_dir + "/generation_config.json", generation.dump(2) + "\n");
      !s.ok())
    return s;
  const engine::FeatureConfig& features = model.config().features;
  json preprocessor = {{"chunk_length", features.max_samples / features.sample_rate_hz},
                       {"feature_extractor_type", "WhisperFeatureExtractor"},
                       {"feature_size", features.num_mel_bins},
                       {"hop_length", features.hop_length},
                       {"n_fft", features.n_fft},
                       {"n_samples", features.max_samples},
                       {"padding_side", "right"},
                       {"padding_value", 0.0},
                       {"processor_class", "Qwen2AudioProcessor"},
                       {"return_attention_mask", true},
                       {"sampling_rate", features.sample_rate_hz}};
  if (absl::Status s =
          WriteText(out_dir + "/preprocessor_config.json", preprocessor.dump(2) + "\n");
      !s.ok())
    return s;
  fs::copy_file(info.tokenizer_json, out_dir + "/tokenizer.json",
                fs::copy_options::overwrite_existing, error);
  if (error) return absl::InternalError(absl::StrCat("cannot copy ", info.tokenizer_json));
  auto reloaded = engine::ModelConfig::FromDirectory(out_dir);
  if (!reloaded.ok()) return reloaded.status();
  const engine::ModelConfig& config = model.config();
  if (reloaded->audio.ToString() != config.audio.ToString() ||
      reloaded->text.ToString() != config.text.ToString() ||
      reloaded->features.ToString() != config.features.ToString() ||
      reloaded->audio_token_id != config.audio_token_id) {
    return absl::InternalError(absl::StrCat("config.json of ", out_dir, " reads back as ",
                                            reloaded->ToString(), ", not ", config.ToString()));
  }
  return absl::OkStatus();
}

}  // namespace speechllm::tools
