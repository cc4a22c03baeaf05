// ModelConfig's checks: values the model can run with, and prompt ids it can take.
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/model/model_config.h"
#include "engine/model/real_fft.h"
#include "engine/status_macros.h"

namespace speechllm::engine {
namespace {

constexpr int kMaxHeadDim = 256;
constexpr int kMaxPositionEmbeddings = 1 << 18;  // 262,144

absl::Status Positive(int value, const char* name) {
  if (value <= 0)
    return absl::InvalidArgumentError(absl::StrCat(name, " must be > 0, got ", value));
  return absl::OkStatus();
}

}  // namespace

absl::Status ModelConfig::CheckPromptIds(const std::vector<int64_t>& ids,
                                         bool audio_placeholders) const {
  for (int64_t id : ids) {
    if (id < 0 || id >= text.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt token id ", id, " is outside the vocabulary of ", text.vocab_size));
    }
    if (id == audio_token_id && !audio_placeholders) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt token id ", id,
                       " is the audio placeholder: the audio goes between prefix and suffix"));
    }
  }
  return absl::OkStatus();
}

absl::Status ModelConfig::Validate() const {
  SPEECHLLM_RETURN_IF_ERROR(Positive(features.sample_rate_hz, "sample_rate_hz"));
  SPEECHLLM_RETURN_IF_ERROR(Positive(features.n_fft, "n_fft"));
  SPEECHLLM_RETURN_IF_ERROR(Positive(features.hop_length, "hop_length"));
  SPEECHLLM_RETURN_IF_ERROR(Positive(features.max_samples, "n_samples"));
  SPEECHLLM_RETURN_IF_ERROR(Positive(audio.num_mel_bins, "audio_config.num_mel_bins"));
  SPEECHLLM_RETURN_IF_ERROR(Positive(audio.d_model, "audio_config.d_model"));
  SPEECHLLM_RETURN_IF_ERROR(Positive(audio.num_layers, "audio_config.encoder_layers"));
  SPEECHLLM_RETURN_IF_ERROR(Positive(audio.num_heads, "audio_config.encoder_attention_heads"));
  SPEECHLLM_RETURN_IF_ERROR(Positive(audio.ffn_dim, "audio_config.encoder_ffn_dim"));
  SPEECHLLM_RETURN_IF_ERROR(
      Positive(audio.max_source_positions, "audio_config.max_source_positions"));
  SPEECHLLM_RETURN_IF_ERROR(Positive(text.vocab_size, "text_config.vocab_size"));
  SPEECHLLM_RETURN_IF_ERROR(Positive(text.hidden_size, "text_config.hidden_size"));
  SPEECHLLM_RETURN_IF_ERROR(Positive(text.num_layers, "text_config.num_hidden_layers"));
  SPEECHLLM_RETURN_IF_ERROR(Positive(text.num_heads, "text_config.num_attention_heads"));
  SPEECHLLM_RETURN_IF_ERROR(Positive(text.num_kv_heads, "text_config.num_key_value_heads"));
  SPEECHLLM_RETURN_IF_ERROR(Positive(text.head_dim, "text_config.head_dim"));
  SPEECHLLM_RETURN_IF_ERROR(Positive(text.intermediate_size, "text_config.intermediate_size"));
  SPEECHLLM_RETURN_IF_ERROR(
      Positive(text.max_position_embeddings, "text_config.max_position_embeddings"));
  // The mel filter bank (n_fft/2 + 1 x num_mel_bins doubles) is built before any weight is read:
  // 2e9 bins took the process down with std::bad_alloc. Whisper uses 80 or 128.
  constexpr int64_t kMaxMelBins = 1024;
  if (audio.num_mel_bins > kMaxMelBins) {
    return absl::InvalidArgumentError(
        absl::StrCat("audio_config.num_mel_bins ", audio.num_mel_bins, " is above ", kMaxMelBins));
  }
  if (features.num_mel_bins != audio.num_mel_bins) {
    return absl::InvalidArgumentError(
        absl::StrCat("preprocessor feature_size ", features.num_mel_bins,
                     " != audio_config.num_mel_bins ", audio.num_mel_bins));
  }
  if (!RealFft::SupportsSize(features.n_fft)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "n_fft ", features.n_fft, " is not supported: it must be even, at most ", RealFft::kMaxSize,
        ", and n_fft/2 must have no prime factor above ", RealFft::kMaxPrimeFactor));
  }
  if (features.n_fft > features.max_samples) {
    // The STFT reflects n_fft/2 samples at each end of the window, which must hold them.
    return absl::InvalidArgumentError(
        absl::StrCat("n_fft ", features.n_fft, " is longer than n_samples ", features.max_samples));
  }
  if (features.max_samples % features.hop_length != 0) {
    return absl::InvalidArgumentError("n_samples must be a multiple of hop_length");
  }
  if (features.max_frames() != 2 * audio.max_source_positions) {
    return absl::InvalidArgumentError(
        absl::StrCat("the encoder expects ", 2 * audio.max_source_positions,
                     " mel frames (2 x max_source_positions) but the feature "
                     "extractor makes ",
                     features.max_frames()));
  }
  if (audio.d_model % audio.num_heads != 0) {
    return absl::InvalidArgumentError(
        "audio_config.d_model must be a multiple of encoder_attention_heads");
  }
  if (text.num_heads % text.num_kv_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("text_config.num_attention_heads (", text.num_heads,
                     ") must be a multiple of num_key_value_heads (", text.num_kv_heads, ")"));
  }
  if (text.head_dim % 2 != 0)
    return absl::InvalidArgumentError("text_config.head_dim must be even for RoPE");
  // The rotary tables hold max_position_embeddings x head_dim values, built before any weight is
  // read: bound them (Qwen2: 128 x 32,768) so a typo cannot ask for tens of gigabytes.
  if (text.head_dim > kMaxHeadDim) {
    return absl::InvalidArgumentError(
        absl::StrCat("text_config.head_dim ", text.head_dim, " is above ", kMaxHeadDim));
  }
  if (text.max_position_embeddings > kMaxPositionEmbeddings) {
    return absl::InvalidArgumentError(absl::StrCat("text_config.max_position_embeddings ",
                                                   text.max_position_embeddings, " is above ",
                                                   kMaxPositionEmbeddings));
  }
  if (text.rms_norm_eps <= 0 || audio.layer_norm_eps <= 0)
    return absl::InvalidArgumentError("eps must be > 0");
  if (text.rope_theta <= 0) return absl::InvalidArgumentError("rope_theta must be > 0");
  for (const int64_t id : stop_token_ids) {
    if (id < 0 || id >= text.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "stop token id ", id, " (eos_token_id) outside the vocabulary of ", text.vocab_size));
    }
  }
  for (int64_t id : {audio_token_id, audio_bos_token_id, audio_eos_token_id}) {
    if (id < 0 || id >= text.vocab_size) {
      return absl::InvalidArgumentError(
          absl::StrCat("audio token id ", id, " outside the vocabulary of ", text.vocab_size));
    }
  }
  if (dtype != "float32" && dtype != "bfloat16" && dtype != "float16") {
    return absl::InvalidArgumentError(
        absl::StrCat("dtype \"", dtype, "\" is not float32, bfloat16 or float16"));
  }
  return absl::OkStatus();
}

}  // namespace speechllm::engine
