// VoiceActivity: energy-based speech / non-speech decision per 10 ms frame of raw samples, over an
// adaptive noise floor. Deterministic and cheap; its decisions drive the Endpointer. Owned by one
// stream's Session (input half), which keeps it for the whole stream (the noise floor carries over
// segments); called on the gRPC thread that reads that stream; not thread-safe.
#ifndef SPEECHLLM_STREAMING_VOICE_ACTIVITY_H_
#define SPEECHLLM_STREAMING_VOICE_ACTIVITY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/model/model_config.h"

namespace speechllm::streaming {

// Frame energy is 10 log10(mean square of the frame's samples minus their mean), in dB relative to
// full scale (samples in [-1, 1]; a full-scale square wave is 0 dBFS, digital silence -100 dBFS).
struct VoiceActivityConfig {
  // A frame is speech when its energy exceeds the noise floor by more than this...
  float threshold_db = 9.0f;
  // ...and exceeds this absolute level, so faint noise is never speech however quiet the floor.
  float min_speech_dbfs = -55.0f;
  // The floor starts at min(first frame's energy, this): a stream that opens with speech is still
  // detected, one that opens with noise louder than this reads as speech until the floor catches
  // up.
  float initial_noise_floor_dbfs = -50.0f;
  // Slow rise: the floor follows louder frames by at most this many dB per second, so speech (which
  // pauses every few hundred ms) keeps its margin while steady noise is absorbed in a few seconds.
  float noise_floor_rise_db_per_s = 3.0f;
  // Fast fall: time constant of the exponential approach to a quieter frame (0: jump at once).
  int noise_floor_fall_ms = 20;
  // Frames after the last loud frame that still count as speech (bridges short dips and word ends).
  int hangover_ms = 100;

  // INVALID_ARGUMENT naming the field and its range.
  absl::Status Validate() const;
  std::string ToString() const;
};

// The decision on one frame, with the measurements behind it (for tests and diagnostics).
struct VadFrame {
  bool is_speech = false;
  bool loud = false;  // above both thresholds: is_speech without the hangover
  float energy_dbfs = 0;
  float noise_floor_dbfs = 0;  // the floor the frame was compared with
};

class VoiceActivity {
 public:
  // `config` must be valid (Validate()). Frames are features.hop_length samples (10 ms).
  explicit VoiceActivity(const VoiceActivityConfig& config,
                         const engine::FeatureConfig& features = engine::FeatureConfig());

  // Starts a new stream: forgets the floor, the hangover and any partial frame.
  void Reset();

  // Appends samples and classifies every frame they complete, appending one VadFrame per frame to
  // `frames` (not cleared). A partial frame waits for the next call; the chunking of the calls does
  // not change the decisions.
  void AcceptWaveform(absl::Span<const float> samples, std::vector<VadFrame>* frames);

  // Classifies one whole frame (frame_samples() samples), bypassing the partial-frame buffer.
  VadFrame ProcessFrame(absl::Span<const float> frame);

  int frame_samples() const { return frame_samples_; }
  int frame_ms() const { return frame_ms_; }
  // Frames classified since construction or Reset().
  int64_t num_frames() const { return num_frames_; }
  float noise_floor_dbfs() const { return noise_floor_dbfs_; }
  const VoiceActivityConfig& config() const { return config_; }

 private:
  VoiceActivityConfig config_;
  int frame_samples_;
  int frame_ms_;
  float rise_db_per_frame_;
  float fall_fraction_;  // share of the gap to a quieter frame closed per frame
  float lowest_floor_dbfs_;
  int hangover_frames_;

  std::vector<float> partial_;  // samples of the frame being filled
  int64_t num_frames_ = 0;
  float noise_floor_dbfs_ = 0;
  int hangover_left_ = 0;
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_VOICE_ACTIVITY_H_
