#include "client/pcm_stream_reader.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace speechllm::client {

using speechllm::v1::AudioFormat;

namespace {
constexpr int kStopPollMs = 100;
}  // namespace

PcmStreamReader::PcmStreamReader(int fd, int sample_rate_hz, int num_channels)
    : fd_(fd), bytes_per_frame_(2 * std::max(num_channels, 1)) {
  format_.set_encoding(AudioFormat::PCM_S16LE);
  format_.set_sample_rate_hz(sample_rate_hz);
  format_.set_channels(num_channels);
}

PcmStreamReader::PcmStreamReader(int fd) : fd_(fd), bytes_per_frame_(1) {
  format_.set_encoding(AudioFormat::ENCODING_UNSPECIFIED);
}

absl::StatusOr<std::string> PcmStreamReader::Read(int64_t max_bytes,
                                                  const std::function<bool()>& stop) {
  if (ended_ || stopped_) return std::string();
  const int64_t want = std::max<int64_t>(max_bytes / bytes_per_frame_, 1) * bytes_per_frame_;
  std::string bytes(static_cast<size_t>(want), '\0');
  int64_t got = 0;
  while (got < want) {
    if (stop) {
      if (stop()) {
        stopped_ = true;
        break;
      }
      pollfd readable = {fd_, POLLIN, 0};
      const int ready = ::poll(&readable, 1, kStopPollMs);
      if (ready < 0 && errno != EINTR) {
        return absl::InternalError(absl::StrCat("waiting for PCM input: ", std::strerror(errno)));
      }
      if (ready <= 0) continue;  // nothing yet (or a signal): look at `stop` again
    }
    const ssize_t n = ::read(fd_, bytes.data() + got, static_cast<size_t>(want - got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("reading PCM input: ", std::strerror(errno)));
    }
    if (n == 0) {
      ended_ = true;
      break;
    }
    got += n;
    if (format_.encoding() == AudioFormat::ENCODING_UNSPECIFIED) break;  // a container: as it came
  }
  const int64_t whole = got / bytes_per_frame_ * bytes_per_frame_;
  dropped_bytes_ += got - whole;  // only at the end of input or at a stop
  bytes.resize(static_cast<size_t>(whole));
  bytes_read_ += whole;
  return bytes;
}

absl::StatusOr<PcmAudio> PcmStreamReader::ReadAll(const std::function<bool()>& stop) {
  PcmAudio audio;
  audio.format = format_;
  constexpr int64_t kBlockBytes = 1 << 16;
  while (true) {
    absl::StatusOr<std::string> block = Read(kBlockBytes, stop);
    if (!block.ok()) return block.status();
    if (block->empty()) break;
    audio.data += *block;
  }
  return audio;
}

}  // namespace speechllm::client
