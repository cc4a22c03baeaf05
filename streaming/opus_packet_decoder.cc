#include "streaming/opus_packet_decoder.h"

#include <opus.h>

#include "absl/strings/str_cat.h"
#include "streaming/downmix.h"

namespace speechllm::streaming {

absl::StatusOr<std::unique_ptr<OpusPacketDecoder>> OpusPacketDecoder::Create(int channels,
                                                                             int output_rate_hz) {
  if (channels != 1 && channels != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("raw Opus packets: channels must be 1 or 2, got ", channels));
  }
  int error = OPUS_OK;
  OpusDecoder* decoder = opus_decoder_create(output_rate_hz, channels, &error);
  if (decoder == nullptr || error != OPUS_OK) {
    return absl::InvalidArgumentError(absl::StrCat("raw Opus packets: cannot decode at ",
                                                   output_rate_hz, " Hz: ", opus_strerror(error)));
  }
  return std::unique_ptr<OpusPacketDecoder>(
      new OpusPacketDecoder(decoder, channels, output_rate_hz));
}

OpusPacketDecoder::OpusPacketDecoder(OpusDecoder* decoder, int channels, int output_rate_hz)
    : decoder_(decoder),
      channels_(channels),
      max_frames_(output_rate_hz / 1000 * 120),
      pcm_(static_cast<size_t>(max_frames_ * channels)) {}

OpusPacketDecoder::~OpusPacketDecoder() { opus_decoder_destroy(decoder_); }

absl::Status OpusPacketDecoder::Decode(absl::string_view bytes, std::vector<float>* out,
                                       int64_t* clipped) {
  ++packets_;
  if (bytes.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("Opus packet ", packets_, " is empty"));
  }
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  const int frames = opus_decode_float(decoder_, data, static_cast<opus_int32>(bytes.size()),
                                       pcm_.data(), max_frames_, 0);
  if (frames < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "corrupt Opus packet ", packets_, " (", bytes.size(), " bytes): ", opus_strerror(frames)));
  }
  AppendDownmix(pcm_.data(), static_cast<size_t>(frames), channels_, out);
  return absl::OkStatus();
}

}  // namespace speechllm::streaming
