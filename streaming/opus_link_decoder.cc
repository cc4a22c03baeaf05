#include "streaming/opus_link_decoder.h"

#include <opus_multistream.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "streaming/downmix.h"

namespace speechllm::streaming {
namespace {

constexpr int kMaxChannels = 8;

int Le16(const unsigned char* p) { return p[0] | (p[1] << 8); }
uint32_t Le32(const unsigned char* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

}  // namespace

absl::StatusOr<OpusHead> ParseOpusHead(absl::string_view packet, absl::string_view encoding_name) {
  auto invalid = [&](absl::string_view message) {
    return absl::InvalidArgumentError(absl::StrCat(encoding_name, ": ", message));
  };
  const auto* p = reinterpret_cast<const unsigned char*>(packet.data());
  if (packet.size() < 19 || packet.substr(0, 8) != "OpusHead") {
    return invalid("the first packet is not an OpusHead identification header (RFC 7845 5.1)");
  }
  if ((p[8] >> 4) != 0) {
    return invalid(absl::StrCat("OpusHead version ", p[8], " is not supported (major 0 only)"));
  }
  OpusHead head;
  head.channels = p[9];
  head.pre_skip = Le16(p + 10);
  head.input_rate_hz = Le32(p + 12);
  head.output_gain_q8 = static_cast<int16_t>(Le16(p + 16));
  head.mapping_family = p[18];
  if (head.channels < 1 || head.channels > kMaxChannels) {
    return invalid(absl::StrCat("OpusHead channel count ", head.channels,
                                " is not supported (1 to ", kMaxChannels, ")"));
  }
  if (head.mapping_family == 0) {
    if (head.channels > 2) {
      return invalid(absl::StrCat("OpusHead mapping family 0 with ", head.channels, " channels"));
    }
    head.streams = 1;
    head.coupled_streams = head.channels - 1;
    return head;
  }
  if (head.mapping_family != 1 && head.mapping_family != 255) {
    return invalid(
        absl::StrCat("OpusHead channel mapping family ", head.mapping_family, " is not supported"));
  }
  if (packet.size() < 21 + static_cast<size_t>(head.channels)) {
    return invalid("OpusHead is too short for its channel mapping table");
  }
  head.streams = p[19];
  head.coupled_streams = p[20];
  if (head.streams < 1 || head.coupled_streams > head.streams ||
      head.streams + head.coupled_streams > 255) {
    return invalid(absl::StrCat("OpusHead stream counts ", head.streams, "/", head.coupled_streams,
                                " are invalid"));
  }
  for (int c = 0; c < head.channels; ++c) {
    head.mapping[c] = p[21 + c];
    if (head.mapping[c] != 255 && head.mapping[c] >= head.streams + head.coupled_streams) {
      return invalid(
          absl::StrCat("OpusHead maps channel ", c, " to missing stream ", head.mapping[c]));
    }
  }
  return head;
}

absl::StatusOr<std::unique_ptr<OpusLinkDecoder>> OpusLinkDecoder::Create(
    const OpusHead& head, const AudioFormatSpec& declared, int output_rate_hz,
    absl::string_view encoding_name) {
  if (declared.sample_rate_hz != 0 && declared.sample_rate_hz != 48000 &&
      static_cast<uint32_t>(declared.sample_rate_hz) != head.input_rate_hz) {
    return DeclaredFormatError(
        "sample_rate_hz",
        absl::StrCat(encoding_name, ": the OpusHead input sample rate is ", head.input_rate_hz,
                     " Hz but the config declared audio.sample_rate_hz ", declared.sample_rate_hz,
                     " (declare 0, 48000 or the input rate)"));
  }
  if (declared.channels != 0 && declared.channels != head.channels) {
    return DeclaredFormatError(
        "channels",
        absl::StrCat(encoding_name, ": the OpusHead has ", head.channels,
                     " channel(s) but the config declared audio.channels ", declared.channels));
  }
  int error = OPUS_OK;
  OpusMSDecoder* decoder = opus_multistream_decoder_create(
      output_rate_hz, head.channels, head.streams, head.coupled_streams, head.mapping, &error);
  if (decoder == nullptr || error != OPUS_OK) {
    if (decoder != nullptr) opus_multistream_decoder_destroy(decoder);
    return absl::InvalidArgumentError(
        absl::StrCat(encoding_name, ": the OpusHead cannot be decoded: ", opus_strerror(error)));
  }
  if (head.output_gain_q8 != 0) {
    opus_multistream_decoder_ctl(decoder, OPUS_SET_GAIN(head.output_gain_q8));
  }
  return std::unique_ptr<OpusLinkDecoder>(
      new OpusLinkDecoder(decoder, head, output_rate_hz, encoding_name));
}

OpusLinkDecoder::OpusLinkDecoder(OpusMSDecoder* decoder, const OpusHead& head, int output_rate_hz,
                                 absl::string_view encoding_name)
    : decoder_(decoder),
      head_(head),
      output_rate_hz_(output_rate_hz),
      encoding_name_(encoding_name),
      // Pre-skip is in 48 kHz samples (RFC 7845 4.2); scaled to the output rate, rounded.
      skip_remaining_((static_cast<int64_t>(head.pre_skip) * output_rate_hz + 24000) / 48000),
      pcm_(static_cast<size_t>(output_rate_hz / 1000 * 120 * head.channels)) {}

OpusLinkDecoder::~OpusLinkDecoder() { opus_multistream_decoder_destroy(decoder_); }

absl::Status OpusLinkDecoder::DecodePacket(absl::string_view packet, int64_t packet_number,
                                           int64_t max_total_emitted, std::vector<float>* out) {
  if (packet.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(encoding_name_, ": audio packet ", packet_number, " is empty"));
  }
  const int max_frames = output_rate_hz_ / 1000 * 120;
  const int frames = opus_multistream_decode_float(
      decoder_, reinterpret_cast<const unsigned char*>(packet.data()),
      static_cast<opus_int32>(packet.size()), pcm_.data(), max_frames, 0);
  if (frames < 0) {
    return absl::InvalidArgumentError(absl::StrCat(encoding_name_, ": corrupt Opus packet ",
                                                   packet_number, " (", packet.size(),
                                                   " bytes): ", opus_strerror(frames)));
  }
  // Output rates divide 48 kHz and Opus frames are multiples of 2.5 ms: exact.
  decoded_48k_ += static_cast<int64_t>(frames) * 48000 / output_rate_hz_;
  const int64_t first = std::min<int64_t>(skip_remaining_, frames);
  skip_remaining_ -= first;
  const int64_t kept = std::clamp<int64_t>(max_total_emitted - emitted_, 0, frames - first);
  AppendDownmix(pcm_.data() + first * head_.channels, static_cast<size_t>(kept), head_.channels,
                out);
  emitted_ += kept;
  return absl::OkStatus();
}

}  // namespace speechllm::streaming
