#include "streaming/voice_activity.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace speechllm::streaming {
namespace {

constexpr double kMinMeanSquare = 1e-10;  // -100 dBFS: digital silence

absl::Status OutOfRange(const char* field, double value, double lo, double hi) {
  return absl::InvalidArgumentError(
      absl::StrCat("VoiceActivityConfig.", field, " must be in [", lo, ", ", hi, "], got ", value));
}

}  // namespace

absl::Status VoiceActivityConfig::Validate() const {
  if (!(threshold_db > 0 && threshold_db <= 40)) {
    return absl::InvalidArgumentError(
        absl::StrCat("VoiceActivityConfig.threshold_db must be in (0, 40], got ", threshold_db));
  }
  if (!(min_speech_dbfs >= -100 && min_speech_dbfs <= 0)) {
    return OutOfRange("min_speech_dbfs", min_speech_dbfs, -100, 0);
  }
  if (!(initial_noise_floor_dbfs >= -100 && initial_noise_floor_dbfs <= 0)) {
    return OutOfRange("initial_noise_floor_dbfs", initial_noise_floor_dbfs, -100, 0);
  }
  if (!(noise_floor_rise_db_per_s > 0 && noise_floor_rise_db_per_s <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("VoiceActivityConfig.noise_floor_rise_db_per_s must be in (0, 100], got ",
                     noise_floor_rise_db_per_s));
  }
  if (noise_floor_fall_ms < 0 || noise_floor_fall_ms > 10000) {
    return OutOfRange("noise_floor_fall_ms", noise_floor_fall_ms, 0, 10000);
  }
  if (hangover_ms < 0 || hangover_ms > 2000) return OutOfRange("hangover_ms", hangover_ms, 0, 2000);
  return absl::OkStatus();
}

std::string VoiceActivityConfig::ToString() const {
  return absl::StrCat("threshold_db=", threshold_db, " min_speech_dbfs=", min_speech_dbfs,
                      " initial_noise_floor_dbfs=", initial_noise_floor_dbfs,
                      " noise_floor_rise_db_per_s=", noise_floor_rise_db_per_s,
                      " noise_floor_fall_ms=", noise_floor_fall_ms, " hangover_ms=", hangover_ms);
}

VoiceActivity::VoiceActivity(const VoiceActivityConfig& config,
                             const engine::FeatureConfig& features)
    : config_(config),
      frame_samples_(features.hop_length),
      frame_ms_(1000 * features.hop_length / features.sample_rate_hz) {
  const double frame_seconds = static_cast<double>(frame_samples_) / features.sample_rate_hz;
  rise_db_per_frame_ = static_cast<float>(config.noise_floor_rise_db_per_s * frame_seconds);
  fall_fraction_ = config.noise_floor_fall_ms == 0
                       ? 1.0f
                       : static_cast<float>(
                             1.0 - std::exp(-1000.0 * frame_seconds / config.noise_floor_fall_ms));
  // A floor below this carries no information: min_speech_dbfs already decides such frames.
  lowest_floor_dbfs_ = config.min_speech_dbfs - config.threshold_db;
  hangover_frames_ = (config.hangover_ms + frame_ms_ - 1) / std::max(frame_ms_, 1);
  partial_.reserve(frame_samples_);
}

void VoiceActivity::Reset() {
  partial_.clear();
  num_frames_ = 0;
  noise_floor_dbfs_ = 0;
  hangover_left_ = 0;
}

void VoiceActivity::AcceptWaveform(absl::Span<const float> samples, std::vector<VadFrame>* frames) {
  size_t i = 0;
  if (!partial_.empty()) {
    const size_t take = std::min(samples.size(), frame_samples_ - partial_.size());
    partial_.insert(partial_.end(), samples.begin(), samples.begin() + take);
    i = take;
    if (partial_.size() < static_cast<size_t>(frame_samples_)) return;
    frames->push_back(ProcessFrame(partial_));
    partial_.clear();
  }
  for (; i + frame_samples_ <= samples.size(); i += frame_samples_) {
    frames->push_back(ProcessFrame(samples.subspan(i, frame_samples_)));
  }
  partial_.insert(partial_.end(), samples.begin() + i, samples.end());
}

VadFrame VoiceActivity::ProcessFrame(absl::Span<const float> frame) {
  double sum = 0;
  for (float x : frame) sum += x;
  const double mean = frame.empty() ? 0 : sum / frame.size();
  double sum_sq = 0;
  for (float x : frame) sum_sq += (x - mean) * (x - mean);
  const double mean_square = frame.empty() ? 0 : sum_sq / frame.size();
  const float energy = static_cast<float>(10.0 * std::log10(std::max(mean_square, kMinMeanSquare)));

  if (num_frames_ == 0) {
    noise_floor_dbfs_ =
        std::max(std::min(energy, config_.initial_noise_floor_dbfs), lowest_floor_dbfs_);
  }
  VadFrame result;
  result.energy_dbfs = energy;
  result.noise_floor_dbfs = noise_floor_dbfs_;
  const bool loud =
      energy > noise_floor_dbfs_ + config_.threshold_db && energy > config_.min_speech_dbfs;
  result.loud = loud;
  if (loud) {
    hangover_left_ = hangover_frames_;
    result.is_speech = true;
  } else if (hangover_left_ > 0) {
    --hangover_left_;
    result.is_speech = true;
  }

  // Track the minimum: fall quickly toward quieter frames, rise slowly (and never past the frame).
  if (energy < noise_floor_dbfs_) {
    noise_floor_dbfs_ += fall_fraction_ * (energy - noise_floor_dbfs_);
  } else {
    noise_floor_dbfs_ = std::min(energy, noise_floor_dbfs_ + rise_db_per_frame_);
  }
  noise_floor_dbfs_ = std::max(noise_floor_dbfs_, lowest_floor_dbfs_);
  ++num_frames_;
  return result;
}

}  // namespace speechllm::streaming
