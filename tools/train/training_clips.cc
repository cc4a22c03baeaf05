#include "tools/train/training_clips.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace speechllm::tools {

absl::StatusOr<std::unique_ptr<TrainingClips>> TrainingClips::Open(const std::string& dir) {
  const std::string index_path = dir + "/train.tsv";
  std::ifstream index(index_path);
  if (!index) return absl::NotFoundError(absl::StrCat("cannot read ", index_path));
  std::unique_ptr<TrainingClips> clips(new TrainingClips());
  std::string line;
  int line_number = 0;
  while (std::getline(index, line)) {
    ++line_number;
    std::vector<std::string> fields = absl::StrSplit(line, '\t');
    ClipEntry entry;
    if (fields.size() != 4 || !absl::SimpleAtoi(fields[0], &entry.offset_samples) ||
        !absl::SimpleAtoi(fields[1], &entry.num_samples) || entry.num_samples <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          index_path, ":", line_number, ": expected offset<TAB>num_samples<TAB>voice<TAB>text"));
    }
    entry.voice = fields[2];
    entry.text = fields[3];
    clips->entries_.push_back(std::move(entry));
  }
  const std::string pcm_path = dir + "/train.pcm";
  clips->fd_ = ::open(pcm_path.c_str(), O_RDONLY);
  if (clips->fd_ < 0) return absl::NotFoundError(absl::StrCat("cannot open ", pcm_path));
  return clips;
}

TrainingClips::~TrainingClips() {
  if (fd_ >= 0) ::close(fd_);
}

absl::StatusOr<std::vector<float>> TrainingClips::Samples(size_t index) const {
  const ClipEntry& entry = entries_.at(index);
  std::vector<int16_t> pcm(entry.num_samples);
  const ssize_t bytes = static_cast<ssize_t>(pcm.size() * sizeof(int16_t));
  if (::pread(fd_, pcm.data(), bytes, entry.offset_samples * 2) != bytes) {
    return absl::DataLossError(absl::StrCat("train.pcm is shorter than clip ", index, " needs"));
  }
  std::vector<float> samples(pcm.size());
  for (size_t i = 0; i < pcm.size(); ++i) samples[i] = pcm[i] / 32768.0f;
  return samples;
}

}  // namespace speechllm::tools
