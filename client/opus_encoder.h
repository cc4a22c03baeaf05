// OggOpusEncoder: float PCM in, an Ogg Opus byte stream (RFC 7845) out, incrementally, on
// libopusenc (ope_encoder_create_callbacks): the client's `--encode opus` converts WAV files and
// live stdin PCM on the fly to save bandwidth. Owned by the client CLI or a test; one thread at a
// time.
#ifndef SPEECHLLM_CLIENT_OPUS_ENCODER_H_
#define SPEECHLLM_CLIENT_OPUS_ENCODER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

struct OggOpusEnc;

namespace speechllm::client {

struct OggOpusEncoderOptions {
  int sample_rate_hz = 16000;  // of the input (libopusenc resamples to 48 kHz as needed)
  int channels = 1;            // 1 to 8 (mapping family 0 up to 2, else 1)
  int bitrate_bps = 24000;
  // Longest time audio waits in the encoder before its page is emitted (a live stream's latency);
  // libopusenc's default is 1 s.
  int max_page_delay_ms = 100;
};

class OggOpusEncoder {
 public:
  // INVALID_ARGUMENT for a rate outside 8000..48000 or a bad channel count or bitrate.
  static absl::StatusOr<std::unique_ptr<OggOpusEncoder>> Create(
      const OggOpusEncoderOptions& options);
  ~OggOpusEncoder();
  OggOpusEncoder(const OggOpusEncoder&) = delete;
  OggOpusEncoder& operator=(const OggOpusEncoder&) = delete;

  // Encodes interleaved samples in [-1, 1]; appends the bytes of the pages completed so far.
  absl::Status Write(absl::Span<const float> interleaved, std::string* out);
  // Encodes what is buffered, writes the end-of-stream page and appends the rest. Later calls fail.
  // Without any sample written there is no stream: nothing is appended (libopusenc asserts when
  // drained empty; an empty stream is what the server takes as no audio).
  absl::Status Finish(std::string* out);

 private:
  OggOpusEncoder() = default;
  static int OnWrite(void* user_data, const unsigned char* data, int length);
  static int OnClose(void* user_data);

  OggOpusEnc* encoder_ = nullptr;
  int channels_ = 1;
  bool finished_ = false;
  bool any_samples_ = false;  // Write passed at least one sample frame
  std::string pending_;       // bytes written by libopusenc, not yet handed out
};

// A whole WAV's interleaved samples as one Ogg Opus stream.
absl::StatusOr<std::string> EncodeOggOpus(absl::Span<const float> interleaved,
                                          const OggOpusEncoderOptions& options);

}  // namespace speechllm::client

#endif  // SPEECHLLM_CLIENT_OPUS_ENCODER_H_
