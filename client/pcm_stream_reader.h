// PcmStreamReader: raw PCM_S16LE from a file descriptor (stdin: a live recorder's output, or a
// file), read in whole frames; or a container's bytes (WAV, Ogg, WebM, FLAC) read as they come. A
// read waiting for input gives up when a stop condition turns true (Ctrl-C, the call ended), so a
// quiet microphone never holds the client. Owned by the client CLI; one thread at a time.
#ifndef SPEECHLLM_CLIENT_PCM_STREAM_READER_H_
#define SPEECHLLM_CLIENT_PCM_STREAM_READER_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "client/pcm_source.h"
#include "speechllm/v1/speechllm.pb.h"

namespace speechllm::client {

class PcmStreamReader {
 public:
  // `fd` is not owned and must stay open while the reader is used. `sample_rate_hz` and
  // `num_channels` only describe the bytes; nothing is resampled.
  PcmStreamReader(int fd, int sample_rate_hz, int num_channels);
  // A container's bytes, unframed; format() is ENCODING_UNSPECIFIED (the server tells the
  // container by its first bytes). Read() returns what has arrived instead of waiting for
  // `max_bytes`: a container's bytes need not be cut into whole frames, and forwarding each write
  // of the recorder at once keeps latency at the recorder's own.
  explicit PcmStreamReader(int fd);

  // Reads up to `max_bytes` (rounded down to whole frames, at least one frame), blocking until that
  // much arrives (containers: until any arrives), the input ends, or `stop` (when given; polled at
  // least every 100 ms) returns true. Returns "" at the end of input and after a stop. A partial
  // frame left at the end or at a stop is dropped and counted in dropped_bytes(). INTERNAL if
  // reading fails.
  absl::StatusOr<std::string> Read(int64_t max_bytes, const std::function<bool()>& stop = nullptr);

  // Reads everything up to the end of input, or up to a stop (`stop` as for Read), into one
  // PcmAudio.
  absl::StatusOr<PcmAudio> ReadAll(const std::function<bool()>& stop = nullptr);

  const speechllm::v1::AudioFormat& format() const { return format_; }
  int64_t bytes_read() const { return bytes_read_; }
  int64_t dropped_bytes() const { return dropped_bytes_; }
  bool stopped() const { return stopped_; }

 private:
  const int fd_;
  speechllm::v1::AudioFormat format_;
  int bytes_per_frame_;
  int64_t bytes_read_ = 0;
  int64_t dropped_bytes_ = 0;
  bool ended_ = false;
  bool stopped_ = false;
};

}  // namespace speechllm::client

#endif  // SPEECHLLM_CLIENT_PCM_STREAM_READER_H_
