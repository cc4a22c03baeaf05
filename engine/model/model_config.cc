#include "engine/model/model_config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/status_macros.h"
#include "nlohmann/json.hpp"

namespace speechllm::engine {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// Reads `key` of `obj` into `out` when present and not null; INVALID_ARGUMENT if its type is wrong.
template <typename T>
absl::Status ReadField(const json& obj, const char* key, const std::string& where, T* out) {
  if (!obj.is_object() || !obj.contains(key) || obj.at(key).is_null()) return absl::OkStatus();
  const json& value = obj.at(key);
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // nlohmann converts 2.9 to 2 and wraps 4294967298 to 2 for an int: a config with either would
    // load a model of another size without a word.
    bool fits = false;
    if (value.is_number_integer()) {
      fits = value.is_number_unsigned()
                 ? value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
                 : value.get<int64_t>() >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
                       value.get<int64_t>() <= static_cast<int64_t>(std::numeric_limits<T>::max());
    }
    if (!fits) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, key, " is not an integer in range: ", value.dump()));
    }
  }
  try {
    *out = value.get<T>();
  } catch (const json::exception&) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, key, " has the wrong type: ", value.dump()));
  }
  return absl::OkStatus();
}

// MODEL.md 5.5: the service stops Qwen2-Audio at <|im_end|> and <|endoftext|> (151645, 151643)
// whatever the config files list: text_config names only the first, and generation_config.json's
// list is unverified. Told by <|AUDIO|> at 151646, which is where every Qwen2-Audio vocabulary has
// it; other models (the tiny fixture, which lists none) keep their files' stop set.
void AddQwenStopTokens(ModelConfig* config) {
  constexpr int64_t kQwenAudioTokenId = 151646, kEndOfText = 151643, kImEnd = 151645;
  if (config->audio_token_id != kQwenAudioTokenId) return;
  config->stop_token_ids.push_back(kEndOfText);
  config->stop_token_ids.push_back(kImEnd);
}

// eos_token_id may be an int or a list of ints.
absl::Status ReadTokenIds(const json& obj, const char* key, const std::string& where,
                          std::vector<int64_t>* out) {
  if (!obj.is_object() || !obj.contains(key) || obj.at(key).is_null()) return absl::OkStatus();
  const json& v = obj.at(key);
  const json list = v.is_array() ? v : json::array({v});
  for (const json& id : list) {
    // Integers only: 151645.9 must not become 151645 (the vocabulary bound is Validate's).
    if (!id.is_number_integer() || (id.is_number_unsigned() && id.get<uint64_t>() > INT64_MAX)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, key, " is not a token id or list of ids: ", v.dump()));
    }
    out->push_back(id.get<int64_t>());
  }
  return absl::OkStatus();
}

absl::StatusOr<json> ParseJsonFile(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path.string()));
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), " is not valid JSON (", e.what(), ")"));
  }
}

absl::Status ParseConfig(const json& root, ModelConfig* config) {
  if (!root.is_object()) return absl::InvalidArgumentError("config.json is not a JSON object");
  std::string model_type;
  SPEECHLLM_RETURN_IF_ERROR(ReadField(root, "model_type", "", &model_type));
  if (!model_type.empty() && model_type != "qwen2_audio") {
    return absl::InvalidArgumentError(absl::StrCat(
        "model_type is \"", model_type, "\"; only qwen2_audio checkpoints are supported"));
  }
  const json empty = json::object();
  const json& audio = root.contains("audio_config") && root["audio_config"].is_object()
                          ? root["audio_config"]
                          : empty;
  const json& text =
      root.contains("text_config") && root["text_config"].is_object() ? root["text_config"] : empty;

  AudioEncoderConfig& a = config->audio;
  SPEECHLLM_RETURN_IF_ERROR(ReadField(audio, "num_mel_bins", "audio_config.", &a.num_mel_bins));
  SPEECHLLM_RETURN_IF_ERROR(ReadField(audio, "d_model", "audio_config.", &a.d_model));
  SPEECHLLM_RETURN_IF_ERROR(ReadField(audio, "encoder_layers", "audio_config.", &a.num_layers));
  SPEECHLLM_RETURN_IF_ERROR(
      ReadField(audio, "encoder_attention_heads", "audio_config.", &a.num_heads));
  SPEECHLLM_RETURN_IF_ERROR(ReadField(audio, "encoder_ffn_dim", "audio_config.", &a.ffn_dim));
  SPEECHLLM_RETURN_IF_ERROR(
      ReadField(audio, "max_source_positions", "audio_config.", &a.max_source_positions));
  std::string activation = "gelu";
  SPEECHLLM_RETURN_IF_ERROR(ReadField(audio, "activation_function", "audio_config.", &activation));
  if (activation != "gelu") {
    return absl::InvalidArgumentError(absl::StrCat("audio_config.activation_function is \"",
                                                   activation,
                                                   "\"; Qwen2-Audio uses exact \"gelu\""));
  }
  bool scale_embedding = false;
  SPEECHLLM_RETURN_IF_ERROR(ReadField(audio, "scale_embedding", "audio_config.", &scale_embedding));
  if (scale_embedding)
    return absl::InvalidArgumentError("audio_config.scale_embedding=true is not supported");
  config->features.num_mel_bins = a.num_mel_bins;

  TextConfig& t = config->text;
  // Published 7B configs put vocab_size at the top level and in text_config; prefer text_config.
  SPEECHLLM_RETURN_IF_ERROR(ReadField(root, "vocab_size", "", &t.vocab_size));
  SPEECHLLM_RETURN_IF_ERROR(ReadField(text, "vocab_size", "text_config.", &t.vocab_size));
  SPEECHLLM_RETURN_IF_ERROR(ReadField(text, "hidden_size", "text_config.", &t.hidden_size));
  SPEECHLLM_RETURN_IF_ERROR(ReadField(text, "num_hidden_layers", "text_config.", &t.num_layers));
  SPEECHLLM_RETURN_IF_ERROR(ReadField(text, "num_attention_heads", "text_config.", &t.num_heads));
  t.num_kv_heads = t.num_heads;  // Qwen2Config: None -> num_attention_heads
  SPEECHLLM_RETURN_IF_ERROR(
      ReadField(text, "num_key_value_heads", "text_config.", &t.num_kv_heads));
  t.head_dim = t.num_heads > 0 ? t.hidden_size / t.num_heads : 0;
  SPEECHLLM_RETURN_IF_ERROR(ReadField(text, "head_dim", "text_config.", &t.head_dim));
  SPEECHLLM_RETURN_IF_ERROR(
      ReadField(text, "intermediate_size", "text_config.", &t.intermediate_size));
  SPEECHLLM_RETURN_IF_ERROR(ReadField(text, "rms_norm_eps", "text_config.", &t.rms_norm_eps));
  SPEECHLLM_RETURN_IF_ERROR(
      ReadField(text, "max_position_embeddings", "text_config.", &t.max_position_embeddings));
  SPEECHLLM_RETURN_IF_ERROR(
      ReadField(text, "tie_word_embeddings", "text_config.", &t.tie_word_embeddings));
  // RoPE base: transformers-5 rope_parameters.rope_theta, else the legacy rope_theta, else 10000.
  SPEECHLLM_RETURN_IF_ERROR(ReadField(text, "rope_theta", "text_config.", &t.rope_theta));
  if (text.contains("rope_parameters") && text["rope_parameters"].is_object()) {
    const json& rope = text["rope_parameters"];
    SPEECHLLM_RETURN_IF_ERROR(
        ReadField(rope, "rope_theta", "text_config.rope_parameters.", &t.rope_theta));
    std::string rope_type = "default";
    SPEECHLLM_RETURN_IF_ERROR(
        ReadField(rope, "rope_type", "text_config.rope_parameters.", &rope_type));
    if (rope_type != "default") {
      return absl::InvalidArgumentError(
          absl::StrCat("rope_type \"", rope_type, "\" is not supported"));
    }
  }
  if (text.contains("rope_scaling") && !text["rope_scaling"].is_null()) {
    return absl::InvalidArgumentError(
        "text_config.rope_scaling is not supported (plain RoPE only)");
  }
  std::string hidden_act = "silu";
  SPEECHLLM_RETURN_IF_ERROR(ReadField(text, "hidden_act", "text_config.", &hidden_act));
  if (hidden_act != "silu") {
    return absl::InvalidArgumentError(
        absl::StrCat("text_config.hidden_act is \"", hidden_act, "\"; expected silu"));
  }
  bool use_sliding_window = false;
  SPEECHLLM_RETURN_IF_ERROR(
      ReadField(text, "use_sliding_window", "text_config.", &use_sliding_window));
  if (use_sliding_window) {
    return absl::InvalidArgumentError("text_config.use_sliding_window=true is not supported");
  }
  bool use_mrope = false;
  SPEECHLLM_RETURN_IF_ERROR(ReadField(text, "use_mrope", "text_config.", &use_mrope));
  if (use_mrope) return absl::InvalidArgumentError("text_config.use_mrope=true is not supported");

  SPEECHLLM_RETURN_IF_ERROR(ReadField(root, "audio_token_index", "", &config->audio_token_id));
  if (config->audio_token_id < 0 || config->audio_token_id > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("audio_token_index ", config->audio_token_id, " is not a token id"));
  }
  // <|audio_bos|> and <|audio_eos|> follow <|AUDIO|> in every Qwen2-Audio vocabulary (MODEL.md 5.1,
  // 10).
  config->audio_bos_token_id = config->audio_token_id + 1;
  config->audio_eos_token_id = config->audio_token_id + 2;
  int64_t bos = -1;
  SPEECHLLM_RETURN_IF_ERROR(ReadField(text, "bos_token_id", "text_config.", &bos));
  if (bos >= 0) config->bos_token_id = bos;
  SPEECHLLM_RETURN_IF_ERROR(
      ReadTokenIds(text, "eos_token_id", "text_config.", &config->stop_token_ids));

  // dtype: transformers-5 top-level "dtype", else "torch_dtype" (top level or text_config).
  std::string dtype;
  SPEECHLLM_RETURN_IF_ERROR(ReadField(root, "dtype", "", &dtype));
  if (dtype.empty()) SPEECHLLM_RETURN_IF_ERROR(ReadField(root, "torch_dtype", "", &dtype));
  if (dtype.empty())
    SPEECHLLM_RETURN_IF_ERROR(ReadField(text, "torch_dtype", "text_config.", &dtype));
  if (dtype.empty()) SPEECHLLM_RETURN_IF_ERROR(ReadField(text, "dtype", "text_config.", &dtype));
  if (!dtype.empty()) config->dtype = dtype;
  return absl::OkStatus();
}

void SortUnique(std::vector<int64_t>* ids) {
  std::sort(ids->begin(), ids->end());
  ids->erase(std::unique(ids->begin(), ids->end()), ids->end());
}

}  // namespace

std::string FeatureConfig::ToString() const {
  return absl::StrCat("FeatureConfig(sample_rate_hz=", sample_rate_hz, ", n_fft=", n_fft,
                      ", hop_length=", hop_length, ", num_mel_bins=", num_mel_bins,
                      ", max_samples=", max_samples, ")");
}

std::string AudioEncoderConfig::ToString() const {
  return absl::StrCat("AudioEncoderConfig(d_model=", d_model, ", num_layers=", num_layers,
                      ", num_heads=", num_heads, ", ffn_dim=", ffn_dim,
                      ", max_source_positions=", max_source_positions, ")");
}

std::string TextConfig::ToString() const {
  return absl::StrCat("TextConfig(vocab_size=", vocab_size, ", hidden_size=", hidden_size,
                      ", num_layers=", num_layers, ", num_heads=", num_heads,
                      ", num_kv_heads=", num_kv_heads, ", head_dim=", head_dim,
                      ", intermediate_size=", intermediate_size, ", rms_norm_eps=", rms_norm_eps,
                      ", rope_theta=", rope_theta,
                      ", max_position_embeddings=", max_position_embeddings,
                      ", tie_word_embeddings=", tie_word_embeddings, ")");
}

std::string ModelConfig::ToString() const {
  return absl::StrCat("ModelConfig(", features.ToString(), ", ", audio.ToString(), ", ",
                      text.ToString(), ", audio_token_id=", audio_token_id,
                      ", audio_bos_token_id=", audio_bos_token_id,
                      ", audio_eos_token_id=", audio_eos_token_id, ", stop_token_ids=[",
                      absl::StrJoin(stop_token_ids, ","), "], dtype=", dtype, ")");
}

absl::StatusOr<ModelConfig> ModelConfig::FromJson(const std::string& config_json) {
  json root;
  try {
    root = json::parse(config_json);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json is not valid JSON (", e.what(), ")"));
  }
  ModelConfig config;
  SPEECHLLM_RETURN_IF_ERROR(ParseConfig(root, &config));
  AddQwenStopTokens(&config);
  SortUnique(&config.stop_token_ids);
  SPEECHLLM_RETURN_IF_ERROR(config.Validate());
  return config;
}

absl::StatusOr<ModelConfig> ModelConfig::FromDirectory(const std::string& dir) {
  const fs::path base(dir);
  std::error_code ec;
  if (!fs::exists(base / "config.json", ec)) {
    return absl::NotFoundError(absl::StrCat("no config.json in ", dir));
  }
  SPEECHLLM_ASSIGN_OR_RETURN(json root, ParseJsonFile(base / "config.json"));
  ModelConfig config;
  SPEECHLLM_RETURN_IF_ERROR(ParseConfig(root, &config));
  if (fs::exists(base / "generation_config.json", ec)) {
    SPEECHLLM_ASSIGN_OR_RETURN(json generation, ParseJsonFile(base / "generation_config.json"));
    SPEECHLLM_RETURN_IF_ERROR(
        ReadTokenIds(generation, "eos_token_id", "generation_config.", &config.stop_token_ids));
  }
  if (fs::exists(base / "preprocessor_config.json", ec)) {
    SPEECHLLM_ASSIGN_OR_RETURN(json pre, ParseJsonFile(base / "preprocessor_config.json"));
    FeatureConfig& f = config.features;
    const std::string where = "preprocessor_config.";
    SPEECHLLM_RETURN_IF_ERROR(ReadField(pre, "sampling_rate", where, &f.sample_rate_hz));
    SPEECHLLM_RETURN_IF_ERROR(ReadField(pre, "n_fft", where, &f.n_fft));
    SPEECHLLM_RETURN_IF_ERROR(ReadField(pre, "hop_length", where, &f.hop_length));
    SPEECHLLM_RETURN_IF_ERROR(ReadField(pre, "feature_size", where, &f.num_mel_bins));
    SPEECHLLM_RETURN_IF_ERROR(ReadField(pre, "n_samples", where, &f.max_samples));
    double dither = 0;
    SPEECHLLM_RETURN_IF_ERROR(ReadField(pre, "dither", where, &dither));
    if (dither != 0)
      return absl::InvalidArgumentError("preprocessor_config.dither != 0 is not supported");
  }
  AddQwenStopTokens(&config);
  SortUnique(&config.stop_token_ids);
  SPEECHLLM_RETURN_IF_ERROR(config.Validate());
  return config;
}

absl::StatusOr<ModelConfig> ModelConfig::Preset(const std::string& name) {
  ModelConfig config;
  if (name == "7b") {
    // Qwen2-Audio-7B (MODEL.md 2.1, 4.1).
    config.text.vocab_size = 156032;
    config.text.intermediate_size = 11008;
    config.text.rms_norm_eps = 1e-5;
    config.text.max_position_embeddings = 8192;
    config.stop_token_ids = {151643, 151645};
    config.bos_token_id = 151643;
    config.dtype = "bfloat16";
  } else if (name == "tiny") {
    // The golden fixture's shapes (MODEL.md 10).
    config.audio = AudioEncoderConfig{128, 64, 2, 4, 256, 1500, 1e-5};
    config.text = TextConfig{512, 64, 2, 4, 2, 16, 160, 1e-6, 10000.0, 4096, false};
    config.audio_token_id = 500;
    config.audio_bos_token_id = 501;
    config.audio_eos_token_id = 502;
  } else {
    return absl::NotFoundError(
        absl::StrCat("unknown model preset \"", name, "\" (known: tiny, 7b)"));
  }
  SPEECHLLM_RETURN_IF_ERROR(config.Validate());
  return config;
}

}  // namespace speechllm::engine
