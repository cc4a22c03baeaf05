#include "engine/model/log_mel.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>

#include "absl/status/status.h"
#include "engine/model/audio_lengths.h"

namespace speechllm::engine {

LogMel::LogMel(const FeatureConfig& config)
    : config_(config),
      fft_(config.n_fft),
      filter_bank_(config.num_frequency_bins(), config.num_mel_bins, 0.0,
                   config.sample_rate_hz / 2.0) {
  // torch.hann_window(n) is periodic: 0.5 - 0.5 cos(2 pi j / n).
  window_.resize(config.n_fft);
  for (int j = 0; j < config.n_fft; ++j) {
    window_[j] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * M_PI * j / config.n_fft));
  }
}

void LogMel::ComputeLog10Frames(absl::Span<const float> samples, int64_t padded_num_samples,
                                int64_t first_frame, int64_t num_frames, float* out) const {
  constexpr int kLanes = RealFft::kLanes;
  const int n_fft = config_.n_fft;
  const int64_t half_window = n_fft / 2;
  const int num_bins = config_.num_frequency_bins();
  const int num_mels = config_.num_mel_bins;
  const int64_t available =
      std::min<int64_t>(static_cast<int64_t>(samples.size()), padded_num_samples);
  std::vector<RealFft::Lanes> frames(n_fft);
  std::vector<RealFft::ComplexLanes> spectrum(num_bins), scratch;
  std::vector<float> power(num_bins);

  // Sample j of the padded signal, j in [-half_window, padded + half_window): reflect at both ends
  // (the edge sample itself is not repeated), zeros past the clip.
  auto sample_at = [&](int64_t j) -> float {
    if (j < 0) j = -j;
    if (j >= padded_num_samples) j = 2 * (padded_num_samples - 1) - j;
    return j < available ? samples[static_cast<size_t>(j)] : 0.0f;
  };

  // kLanes frames per FFT call, one per SIMD lane; a short last group leaves lanes unused.
  for (int64_t group = 0; group < num_frames; group += kLanes) {
    const int lanes_used = static_cast<int>(std::min<int64_t>(kLanes, num_frames - group));
    for (int lane = 0; lane < kLanes; ++lane) {
      const int64_t start = (first_frame + group + lane) * config_.hop_length - half_window;
      if (lane >= lanes_used) {
        for (int j = 0; j < n_fft; ++j) frames[j][lane] = 0.0f;
      } else if (start >= 0 && start + n_fft <= available) {
        const float* src = samples.data() + start;
        for (int j = 0; j < n_fft; ++j) frames[j][lane] = src[j] * window_[j];
      } else {
        for (int j = 0; j < n_fft; ++j) frames[j][lane] = sample_at(start + j) * window_[j];
      }
    }
    fft_.ForwardLanes(frames.data(), spectrum.data(), &scratch);
    for (int lane = 0; lane < lanes_used; ++lane) {
      for (int k = 0; k < num_bins; ++k) {
        const float re = spectrum[k].re[lane], im = spectrum[k].im[lane];
        power[k] = re * re + im * im;
      }
      float* frame_out = out + (group + lane) * num_mels;
      filter_bank_.Apply(power.data(), frame_out);
      for (int m = 0; m < num_mels; ++m)
        frame_out[m] = std::log10(std::max(frame_out[m], config_.log_floor));
    }
  }
}

void LogMel::FloorAndScale(float max_log10, float* values, int64_t count) const {
  const float floor = max_log10 - config_.dynamic_range;
  for (int64_t i = 0; i < count; ++i) values[i] = (std::max(values[i], floor) + 4.0f) / 4.0f;
}

LogMelFeatures LogMel::Extract(absl::Span<const float> samples, int64_t num_frames_to_store) const {
  const int num_mels = config_.num_mel_bins;
  std::vector<float> frame_major(static_cast<size_t>(num_frames_to_store) * num_mels);
  ComputeLog10Frames(samples, config_.max_samples, 0, num_frames_to_store, frame_major.data());
  float max_log10 = -std::numeric_limits<float>::infinity();
  for (float v : frame_major) max_log10 = std::max(max_log10, v);
  FloorAndScale(max_log10, frame_major.data(), static_cast<int64_t>(frame_major.size()));

  LogMelFeatures features;
  features.num_mel_bins = num_mels;
  features.num_frames = num_frames_to_store;
  features.num_valid_frames = NumValidFrames(static_cast<int64_t>(samples.size()), config_);
  features.max_log10 = max_log10;
  features.values.resize(frame_major.size());
  // Transpose frame-major -> mel-major in tiles that stay in the L1 cache.
  constexpr int64_t kTile = 32;
  for (int64_t t0 = 0; t0 < num_frames_to_store; t0 += kTile) {
    const int64_t t1 = std::min(t0 + kTile, num_frames_to_store);
    for (int m = 0; m < num_mels; ++m) {
      float* dst = features.values.data() + static_cast<size_t>(m) * num_frames_to_store;
      for (int64_t t = t0; t < t1; ++t) dst[t] = frame_major[t * num_mels + m];
    }
  }
  return features;
}

LogMelFeatures LogMel::ExtractPadded(absl::Span<const float> samples) const {
  return Extract(samples, config_.max_frames());
}

absl::StatusOr<LogMelFeatures> LogMel::ExtractValidPrefix(absl::Span<const float> samples) const {
  if (samples.empty())
    return absl::InvalidArgumentError("cannot compute features of an empty clip");
  const int64_t valid = NumValidFrames(static_cast<int64_t>(samples.size()), config_);
  // Frames at or past valid + 2 see only zero padding: their log10 is exactly log10(1e-10), the
  // least possible value, so leaving them out changes neither the maximum nor any encoder output we
  // keep.
  return Extract(samples, std::min<int64_t>(valid + 2, config_.max_frames()));
}

}  // namespace speechllm::engine
