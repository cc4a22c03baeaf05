// ModelConfig: every dimension, epsilon, token id and front-end setting of a Qwen2-Audio
// checkpoint, read from its config.json (transformers-5 style or the published 7B style with
// library defaults), generation_config.json and preprocessor_config.json. No model constant lives
// anywhere else. Plain data: built once at load time, then shared read-only by every thread.
#ifndef SPEECHLLM_ENGINE_MODEL_MODEL_CONFIG_H_
#define SPEECHLLM_ENGINE_MODEL_MODEL_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace speechllm::engine {

// Whisper feature extractor settings (preprocessor_config.json; defaults = Qwen2-Audio's).
struct FeatureConfig {
  int sample_rate_hz = 16000;
  int n_fft = 400;       // window length in samples (25 ms)
  int hop_length = 160;  // samples per frame (10 ms)
  int num_mel_bins = 128;
  int max_samples = 480000;    // chunk_length 30 s: the encoder's input window
  float log_floor = 1e-10f;    // clamp before log10
  float dynamic_range = 8.0f;  // log10 units below the maximum that survive

  int num_frequency_bins() const { return n_fft / 2 + 1; }
  int max_frames() const { return max_samples / hop_length; }
  std::string ToString() const;
};

// Qwen2AudioEncoderConfig (Whisper-style audio tower).
struct AudioEncoderConfig {
  int num_mel_bins = 128;
  int d_model = 1280;
  int num_layers = 32;
  int num_heads = 20;
  int ffn_dim = 5120;
  int max_source_positions = 1500;  // rows of embed_positions = conv2 positions of 30 s
  double layer_norm_eps = 1e-5;     // PyTorch LayerNorm default

  int head_dim() const { return d_model / num_heads; }
  std::string ToString() const;
};

// Qwen2Config (decoder).
struct TextConfig {
  int vocab_size = 151936;
  int hidden_size = 4096;
  int num_layers = 32;
  int num_heads = 32;
  int num_kv_heads = 32;
  int head_dim = 128;
  int intermediate_size = 22016;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  int max_position_embeddings = 32768;
  bool tie_word_embeddings = false;

  std::string ToString() const;
};

struct ModelConfig {
  FeatureConfig features;
  AudioEncoderConfig audio;
  TextConfig text;
  int64_t audio_token_id = 151646;      // <|AUDIO|>, placeholder rows that receive embeddings
  int64_t audio_bos_token_id = 151647;  // <|audio_bos|>
  int64_t audio_eos_token_id = 151648;  // <|audio_eos|>
  std::optional<int64_t> bos_token_id;  // never prepended by Qwen2; informational
  std::vector<int64_t> stop_token_ids;  // eos ids of text_config and generation_config
  std::string dtype = "float32";        // checkpoint dtype: float32, bfloat16 or float16

  // Reads `dir`/config.json and, when present, generation_config.json and preprocessor_config.json.
  // NOT_FOUND without config.json; INVALID_ARGUMENT (naming the field) for bad or unsupported
  // values.
  static absl::StatusOr<ModelConfig> FromDirectory(const std::string& dir);
  // Parses config.json text (no companion files).
  static absl::StatusOr<ModelConfig> FromJson(const std::string& config_json);
  // Built-in shapes for benchmarks without a checkpoint: "tiny" (the golden fixture) and "7b"
  // (Qwen2-Audio-7B). NOT_FOUND for other names.
  static absl::StatusOr<ModelConfig> Preset(const std::string& name);

  absl::Status Validate() const;
  // INVALID_ARGUMENT naming the first prompt token id outside [0, text.vocab_size), or the audio
  // placeholder id unless `audio_placeholders` (a whole prompt; the prefix and suffix around a
  // stream's audio hold none, the audio goes between them).
  absl::Status CheckPromptIds(const std::vector<int64_t>& ids,
                              bool audio_placeholders = false) const;
  std::string ToString() const;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_MODEL_CONFIG_H_
