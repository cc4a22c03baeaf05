// TrainingClips: the clips made by tools/train/make_data.py (train.tsv index + train.pcm samples,
// 16 kHz mono S16LE), read on demand with pread. Owned by the trainer; its one training thread
// calls it.
#ifndef SPEECHLLM_TOOLS_TRAIN_TRAINING_CLIPS_H_
#define SPEECHLLM_TOOLS_TRAIN_TRAINING_CLIPS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace speechllm::tools {

struct ClipEntry {
  int64_t offset_samples = 0;
  int64_t num_samples = 0;
  std::string voice;  // espeak-ng voice, speed, pitch and augmentation, for reports
  std::string text;   // the transcript (written form)
};

class TrainingClips {
 public:
  // Reads `dir`/train.tsv and opens `dir`/train.pcm. NOT_FOUND / INVALID_ARGUMENT naming the file
  // and line at fault.
  static absl::StatusOr<std::unique_ptr<TrainingClips>> Open(const std::string& dir);
  ~TrainingClips();

  const std::vector<ClipEntry>& entries() const { return entries_; }
  // Samples of clip `index` scaled to [-1, 1).
  absl::StatusOr<std::vector<float>> Samples(size_t index) const;

 private:
  TrainingClips() = default;
  std::vector<ClipEntry> entries_;
  int fd_ = -1;
};

}  // namespace speechllm::tools

#endif  // SPEECHLLM_TOOLS_TRAIN_TRAINING_CLIPS_H_
