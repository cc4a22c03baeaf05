// AudioFrontend: incremental log-mel of one segment (ARCHITECTURE.md 5). Frames are computed once,
// as soon as their whole window has arrived, and equal LogMel's offline frames bit for bit.
// Owned by one stream's Session (input half) and called only on the gRPC thread that reads that
// stream; not thread-safe. The shared LogMel is immutable and outlives the frontend.
#ifndef SPEECHLLM_STREAMING_AUDIO_FRONTEND_H_
#define SPEECHLLM_STREAMING_AUDIO_FRONTEND_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/model/log_mel.h"

namespace speechllm::streaming {

// Life cycle per segment: Reset(), AcceptWaveform()..., InputFinished(), FinalFeatures(). A new
// segment restarts from sample 0 (reflect padding at its start), so every segment's features equal
// those of its samples processed alone (LogMel::ExtractValidPrefix).
class AudioFrontend {
 public:
  // `log_mel` is not owned and must outlive this object.
  explicit AudioFrontend(const engine::LogMel* log_mel);

  AudioFrontend(const AudioFrontend&) = delete;
  AudioFrontend& operator=(const AudioFrontend&) = delete;

  // Drops the current segment and starts a new, empty one (buffers keep their capacity).
  void Reset();

  // Appends 16 kHz mono samples of the current segment and computes every frame that became ready.
  // FAILED_PRECONDITION after InputFinished(), or when the segment would exceed
  // FeatureConfig::max_samples (30 s; the endpointer must cut segments before); nothing is appended
  // then.
  absl::Status AcceptWaveform(absl::Span<const float> samples);

  // Marks the end of the segment's samples and computes the remaining frames over zero padding:
  // afterwards num_final_frames() frames are ready. Idempotent.
  void InputFinished();
  bool input_finished() const { return input_finished_; }

  int64_t num_samples() const { return static_cast<int64_t>(samples_.size()); }
  // ceil(num_samples / hop): HF's feature_attention_mask sum for this segment.
  int64_t num_valid_frames() const;
  // Frames [0, NumFramesReady()) are computed. Before InputFinished(), frame t is ready once
  // t * hop + n_fft / 2 <= num_samples (its whole window has arrived); afterwards every frame
  // t < num_final_frames() is. Never more than max_frames (3000).
  int64_t NumFramesReady() const { return frames_ready_; }
  // min(num_valid_frames + 2, max_frames): the frames the exact re-encode needs (MODEL.md 2.5); 0
  // for an empty segment.
  int64_t num_final_frames() const;

  int num_mel_bins() const { return num_mel_bins_; }
  // Maximum unfloored log10-mel over the frames computed so far; -infinity before the first.
  float running_max_log10() const { return running_max_log10_; }
  // Unfloored log10-mel of frame t (num_mel_bins floats); t < NumFramesReady(). Valid until the
  // next non-const call.
  const float* Log10Frame(int64_t t) const;
  // Frames [first, first + count) (all ready), floored at max_log10 - 8 and scaled to (x + 4) / 4,
  // frame-major [count][num_mel_bins]: an EncoderChunk's `frames`.
  std::vector<float> FloorAndScaleFrames(int64_t first, int64_t count, float max_log10) const;

  // After InputFinished(): frames [0, num_final_frames()) floored with the segment's true maximum
  // (final_max_log10()), frame-major [frame][num_mel_bins]: SegmentEnd::features, equal to
  // ExtractValidPrefix's values transposed. Empty before InputFinished() or for an empty segment.
  std::vector<float> FinalFeatures() const;
  // The segment's maximum once input is finished (equals running_max_log10() then).
  float final_max_log10() const { return running_max_log10_; }

  const std::vector<float>& samples() const { return samples_; }

 private:
  // Computes frames [frames_ready_, end_frame) and updates the running maximum.
  void ComputeFramesUntil(int64_t end_frame);

  const engine::LogMel* log_mel_;
  int64_t hop_samples_;
  int64_t half_window_samples_;
  int64_t max_samples_;
  int64_t max_frames_;
  int num_mel_bins_;

  std::vector<float> samples_;
  std::vector<float> log10_frames_;  // frame-major [frames_ready_][num_mel_bins_], unfloored
  int64_t frames_ready_ = 0;
  float running_max_log10_;
  bool input_finished_ = false;
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_AUDIO_FRONTEND_H_
