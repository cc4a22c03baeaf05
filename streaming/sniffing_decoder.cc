#include "streaming/sniffing_decoder.h"

#include <algorithm>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace speechllm::streaming {

constexpr size_t kMagicBytes = 4;

absl::StatusOr<AudioEncoding> SniffContainer(absl::string_view first_bytes) {
  const absl::string_view magic = first_bytes.substr(0, kMagicBytes);
  if (magic == "OggS") return AudioEncoding::kOggOpus;
  if (magic == absl::string_view("\x1A\x45\xDF\xA3", 4)) return AudioEncoding::kWebmOpus;
  if (magic == "fLaC" || magic.substr(0, 3) == "ID3") return AudioEncoding::kFlac;
  if (magic == "RIFF") return AudioEncoding::kWav;
  return UnsupportedAudioError(absl::StrCat(
      "the audio starts with \"", absl::CHexEscape(magic),
      "\", none of \"RIFF\" (WAV), \"OggS\" (Ogg Opus), 1A 45 DF A3 (WebM) and \"fLaC\" (FLAC); "
      "declare the encoding (raw PCM and G.711 must be declared)"));
}

SniffingDecoder::SniffingDecoder(const AudioFormatSpec& declared, int output_rate_hz)
    : declared_(declared), output_rate_hz_(output_rate_hz) {}

absl::Status SniffingDecoder::Decode(absl::string_view bytes, std::vector<float>* out,
                                     int64_t* clipped) {
  if (decoder_ != nullptr) return decoder_->Decode(bytes, out, clipped);
  const size_t take = std::min(kMagicBytes - head_.size(), bytes.size());
  head_.append(bytes.data(), take);
  if (head_.size() < kMagicBytes) return absl::OkStatus();
  absl::StatusOr<AudioEncoding> encoding = SniffContainer(head_);
  if (!encoding.ok()) return encoding.status();
  AudioFormatSpec format = declared_;
  format.encoding = *encoding;
  absl::StatusOr<std::unique_ptr<AudioDecoder>> decoder = Create(format, output_rate_hz_);
  if (!decoder.ok()) return decoder.status();
  decoder_ = *std::move(decoder);
  decoder_->LimitSamplesPerDecode(max_samples_per_decode_);
  // The held bytes and the rest of this call's in one call, as the client sent them.
  return decoder_->Decode(absl::StrCat(head_, bytes.substr(take)), out, clipped);
}

absl::Status SniffingDecoder::Finish(std::vector<float>* out) {
  if (decoder_ != nullptr) return decoder_->Finish(out);
  if (head_.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("the audio ended after ", head_.size(),
                                                 " bytes, too few to tell its container"));
}

absl::Status SniffingDecoder::Drain(std::vector<float>* out) {
  return decoder_ == nullptr ? absl::OkStatus() : decoder_->Drain(out);
}

void SniffingDecoder::LimitSamplesPerDecode(int64_t max_samples) {
  max_samples_per_decode_ = max_samples;
  if (decoder_ != nullptr) decoder_->LimitSamplesPerDecode(max_samples);
}

}  // namespace speechllm::streaming
