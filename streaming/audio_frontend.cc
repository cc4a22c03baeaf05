#include "streaming/audio_frontend.h"

#include <algorithm>
#include <cassert>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/model/audio_lengths.h"

namespace speechllm::streaming {

AudioFrontend::AudioFrontend(const engine::LogMel* log_mel)
    : log_mel_(log_mel),
      hop_samples_(log_mel->config().hop_length),
      half_window_samples_(log_mel->config().n_fft / 2),
      max_samples_(log_mel->config().max_samples),
      max_frames_(log_mel->config().max_frames()),
      num_mel_bins_(log_mel->config().num_mel_bins),
      running_max_log10_(-std::numeric_limits<float>::infinity()) {}

void AudioFrontend::Reset() {
  samples_.clear();
  log10_frames_.clear();
  frames_ready_ = 0;
  running_max_log10_ = -std::numeric_limits<float>::infinity();
  input_finished_ = false;
}

absl::Status AudioFrontend::AcceptWaveform(absl::Span<const float> samples) {
  if (input_finished_) {
    return absl::FailedPreconditionError("AcceptWaveform after InputFinished; call Reset() first");
  }
  const int64_t total = num_samples() + static_cast<int64_t>(samples.size());
  if (total > max_samples_) {
    return absl::FailedPreconditionError(
        absl::StrCat("segment would hold ", total, " samples, more than max_samples ", max_samples_,
                     "; segments must be cut at ", max_samples_, " samples"));
  }
  samples_.insert(samples_.end(), samples.begin(), samples.end());
  // Frame t's window is samples [t * hop - n_fft/2, t * hop + n_fft/2); it is complete once its
  // last sample has arrived. Earlier frames read reflected samples, which are already here too.
  const int64_t last_complete =
      engine::FloorDiv(num_samples() - half_window_samples_, hop_samples_);
  ComputeFramesUntil(std::min(last_complete + 1, max_frames_));
  return absl::OkStatus();
}

void AudioFrontend::InputFinished() {
  if (input_finished_) return;
  input_finished_ = true;
  ComputeFramesUntil(num_final_frames());
}

int64_t AudioFrontend::num_valid_frames() const {
  return engine::NumValidFrames(num_samples(), log_mel_->config());
}

int64_t AudioFrontend::num_final_frames() const {
  if (samples_.empty()) return 0;
  return std::min(num_valid_frames() + 2, max_frames_);
}

void AudioFrontend::ComputeFramesUntil(int64_t end_frame) {
  if (end_frame <= frames_ready_) return;
  const int64_t count = end_frame - frames_ready_;
  log10_frames_.resize(static_cast<size_t>(end_frame * num_mel_bins_));
  float* out = log10_frames_.data() + frames_ready_ * num_mel_bins_;
  // Same padded length as the offline extractor, so frames near the end see the same zeros.
  log_mel_->ComputeLog10Frames(samples_, max_samples_, frames_ready_, count, out);
  for (int64_t i = 0; i < count * num_mel_bins_; ++i) {
    running_max_log10_ = std::max(running_max_log10_, out[i]);
  }
  frames_ready_ = end_frame;
}

const float* AudioFrontend::Log10Frame(int64_t t) const {
  assert(t >= 0 && t < frames_ready_);
  return log10_frames_.data() + t * num_mel_bins_;
}

std::vector<float> AudioFrontend::FloorAndScaleFrames(int64_t first, int64_t count,
                                                      float max_log10) const {
  assert(first >= 0 && count >= 0 && first + count <= frames_ready_);
  const float* begin = log10_frames_.data() + first * num_mel_bins_;
  std::vector<float> out(begin, begin + count * num_mel_bins_);
  log_mel_->FloorAndScale(max_log10, out.data(), static_cast<int64_t>(out.size()));
  return out;
}

std::vector<float> AudioFrontend::FinalFeatures() const {
  if (!input_finished_) return {};
  return FloorAndScaleFrames(0, num_final_frames(), running_max_log10_);
}

}  // namespace speechllm::streaming
