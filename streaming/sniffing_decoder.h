// SniffingDecoder: a container stream whose encoding the client left to the server (API.md: "With
// ENCODING_UNSPECIFIED the container is sniffed from its magic bytes"): holds the first 4 bytes,
// then hands everything to the WAV, Ogg Opus, WebM Opus or FLAC decoder they name. Raw PCM and
// G.711 have no magic and must be declared. Owned by one stream's AudioDecoder; its reader thread
// only.
#ifndef SPEECHLLM_STREAMING_SNIFFING_DECODER_H_
#define SPEECHLLM_STREAMING_SNIFFING_DECODER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "streaming/audio_decoder.h"

namespace speechllm::streaming {

// The container the first bytes of a stream name: kWav ("RIFF"), kOggOpus ("OggS"), kWebmOpus
// (1A 45 DF A3), kFlac ("fLaC", or an "ID3" tag before it). INVALID_ARGUMENT saying what to
// declare otherwise.
absl::StatusOr<AudioEncoding> SniffContainer(absl::string_view first_bytes);

class SniffingDecoder : public AudioDecoder {
 public:
  // `declared` holds the client's optional rate and channels (0 = from the container).
  SniffingDecoder(const AudioFormatSpec& declared, int output_rate_hz);

  absl::Status Decode(absl::string_view bytes, std::vector<float>* out, int64_t* clipped) override;
  // OK for a stream without audio; INVALID_ARGUMENT for one of 1 to 3 bytes.
  absl::Status Finish(std::vector<float>* out) override;
  absl::Status Drain(std::vector<float>* out) override;
  void LimitSamplesPerDecode(int64_t max_samples) override;
  int64_t HeldSamples() const override { return decoder_ == nullptr ? 0 : decoder_->HeldSamples(); }

 private:
  const AudioFormatSpec declared_;
  const int output_rate_hz_;
  int64_t max_samples_per_decode_ = 0;
  std::string head_;                       // the first bytes, until there are 4
  std::unique_ptr<AudioDecoder> decoder_;  // the sniffed container's, once known
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_SNIFFING_DECODER_H_
