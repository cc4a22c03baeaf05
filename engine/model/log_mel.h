// LogMel: the Whisper / Qwen2-Audio log-mel front end (MODEL.md 1): periodic Hann window, STFT with
// reflect centre padding over the clip zero-padded to 30 s, power spectrum, Slaney mel bank,
// log10(max(., 1e-10)), floor at (global max - 8), then (x + 4) / 4. The unfloored log10 frames are
// exposed separately so that a streaming front end can compute frames as samples arrive and apply
// the floor later. Immutable after construction; all methods are const and thread-safe.
#ifndef SPEECHLLM_ENGINE_MODEL_LOG_MEL_H_
#define SPEECHLLM_ENGINE_MODEL_LOG_MEL_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/model/mel_filter_bank.h"
#include "engine/model/model_config.h"
#include "engine/model/real_fft.h"

namespace speechllm::engine {

// Log-mel features of one clip, laid out like transformers' input_features[b]: mel-major
// [num_mel_bins][num_frames].
struct LogMelFeatures {
  std::vector<float> values;
  int64_t num_mel_bins = 0;
  int64_t num_frames = 0;        // columns stored
  int64_t num_valid_frames = 0;  // ceil(samples / hop): HF's feature_attention_mask sum
  float max_log10 = 0;           // the maximum used for the dynamic-range floor
};

class LogMel {
 public:
  explicit LogMel(const FeatureConfig& config);

  const FeatureConfig& config() const { return config_; }
  const MelFilterBank& filter_bank() const { return filter_bank_; }

  // Unfloored log10-mel of frames [first_frame, first_frame + num_frames) of the signal `samples`
  // zero-extended to `padded_num_samples` samples and reflect-padded by n_fft/2 at both ends, as
  // torch.stft(center=True, pad_mode="reflect") sees it. Frame t is centred on sample t * hop.
  // Writes num_frames * num_mel_bins floats to `out`, frame-major.
  void ComputeLog10Frames(absl::Span<const float> samples, int64_t padded_num_samples,
                          int64_t first_frame, int64_t num_frames, float* out) const;

  // Applies the dynamic-range floor and scaling in place: x = (max(x, max_log10 - 8) + 4) / 4.
  void FloorAndScale(float max_log10, float* values, int64_t count) const;

  // HF WhisperFeatureExtractor output for one clip, padded to max_frames (3000) columns. Samples
  // past max_samples are dropped, as HF truncates.
  LogMelFeatures ExtractPadded(absl::Span<const float> samples) const;

  // Only the frames the encoder needs for an exact result without padding (MODEL.md 2.5): the valid
  // frames plus two more (at most max_frames); the floor uses the same maximum as the padded run.
  // INVALID_ARGUMENT for an empty clip.
  absl::StatusOr<LogMelFeatures> ExtractValidPrefix(absl::Span<const float> samples) const;

 private:
  LogMelFeatures Extract(absl::Span<const float> samples, int64_t num_frames_to_store) const;

  FeatureConfig config_;
  RealFft fft_;
  MelFilterBank filter_bank_;
  std::vector<float> window_;  // periodic Hann, n_fft samples
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_LOG_MEL_H_
