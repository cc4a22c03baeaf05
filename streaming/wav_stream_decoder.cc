#include "streaming/wav_stream_decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace speechllm::streaming {
namespace {

constexpr int kFormatPcm = 1;
constexpr int kFormatFloat = 3;
constexpr int kFormatAlaw = 6;
constexpr int kFormatMulaw = 7;
constexpr int kFormatExtensible = 0xFFFE;
// A fmt chunk is 16 to 40 bytes; a larger one is refused rather than held.
constexpr uint32_t kMaxFormatBytes = 1024;
// Chunks before the data (tags, pictures) are skipped unheld, but no more than this many bytes.
constexpr int64_t kMaxBytesBeforeData = 16 << 20;
// Data sizes streaming writers leave when they cannot seek back: "to the end".
constexpr uint32_t kUnsetSizes[] = {0, 0xFFFFFFFF};

absl::Status Invalid(absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat("WAV: ", message));
}

absl::Status Unsupported(absl::string_view message) {
  return UnsupportedAudioError(absl::StrCat("WAV: ", message));
}

// An error of the PCM or G.711 decoder behind the header, marked as the WAV's (payloads kept).
absl::Status Prefixed(const absl::Status& status) {
  if (status.ok()) return status;
  absl::Status prefixed(status.code(), absl::StrCat("WAV: ", status.message()));
  status.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { prefixed.SetPayload(url, payload); });
  return prefixed;
}

uint32_t Le(absl::string_view bytes, size_t at, int n) {
  uint32_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(bytes[at + i]);
  return v;
}

}  // namespace

WavStreamDecoder::WavStreamDecoder(const AudioFormatSpec& declared, int output_rate_hz)
    : declared_(declared), output_rate_hz_(output_rate_hz) {}

absl::Status WavStreamDecoder::Decode(absl::string_view bytes, std::vector<float>* out,
                                      int64_t* clipped) {
  if (in_data_) return DecodeData(bytes, out, clipped);
  header_.append(bytes.data(), bytes.size());
  if (absl::Status status = ParseHeader(); !status.ok()) return status;
  if (!in_data_) return absl::OkStatus();
  std::string data = std::move(header_);  // what came after the data chunk's header
  header_.clear();
  return DecodeData(data, out, clipped);
}

absl::Status WavStreamDecoder::ParseHeader() {
  if (!riff_checked_) {
    const size_t n = std::min<size_t>(4, header_.size());
    if (header_.compare(0, n, "RIFF", n) != 0) {
      return Invalid(absl::StrCat("the stream does not start with \"RIFF\"; it starts with \"",
                                  absl::CHexEscape(absl::string_view(header_).substr(0, 4)), "\""));
    }
    if (header_.size() < 12) return absl::OkStatus();
    if (header_.compare(8, 4, "WAVE") != 0) return Invalid("a RIFF file that is not WAVE");
    header_.erase(0, 12);
    riff_checked_ = true;
  }
  // Chunks are read at `pos` and the bytes before it dropped once at the end, so that many small
  // chunks in one message cost their size, not their count times the message.
  size_t pos = 0;
  absl::Status status;
  while (status.ok()) {
    if (skip_remaining_ > 0) {
      const auto take = static_cast<size_t>(
          std::min<int64_t>(skip_remaining_, static_cast<int64_t>(header_.size() - pos)));
      pos += take;
      skip_remaining_ -= static_cast<int64_t>(take);
      if (skip_remaining_ > 0) break;
    }
    if (header_.size() - pos < 8) break;
    const absl::string_view chunk = absl::string_view(header_).substr(pos);
    const absl::string_view id = chunk.substr(0, 4);
    const uint32_t size = Le(chunk, 4, 4);
    if (id == "data") {
      if (!have_format_) {
        status = Invalid("the data chunk comes before the fmt chunk");
        break;
      }
      status = StartData(size);
      pos += 8;
      break;
    }
    if (id == "fmt ") {
      if (size < 16 || size > kMaxFormatBytes) {
        status = Invalid(
            absl::StrCat("a fmt chunk of ", size, " bytes (16 to ", kMaxFormatBytes, " are read)"));
        break;
      }
      if (chunk.size() < 8 + size) break;
      status = ReadFormat(chunk.substr(8, size));
    }
    // The fmt chunk, and any other (LIST, fact, cue ...) unheld; chunks are word-aligned.
    const int64_t skip = 8 + int64_t{size} + (size & 1);
    skipped_before_data_ += skip;
    if (skipped_before_data_ > kMaxBytesBeforeData) {
      status = Invalid(absl::StrCat("more than ", kMaxBytesBeforeData,
                                    " bytes of chunks before the data chunk"));
      break;
    }
    skip_remaining_ = skip;
  }
  header_.erase(0, pos);
  return status;
}

absl::Status WavStreamDecoder::StartData(uint32_t size) {
  const bool unset =
      std::find(std::begin(kUnsetSizes), std::end(kUnsetSizes), size) != std::end(kUnsetSizes);
  data_remaining_ = unset ? -1 : size;
  AudioFormatSpec spec{AudioEncoding::kPcmF32le, sample_rate_hz_, channels_};
  if (format_tag_ == kFormatPcm && bits_per_sample_ == 16) spec.encoding = AudioEncoding::kPcmS16le;
  if (format_tag_ == kFormatMulaw) spec.encoding = AudioEncoding::kMulaw;
  if (format_tag_ == kFormatAlaw) spec.encoding = AudioEncoding::kAlaw;
  // Samples that are not float32 already go to the float decoder converted.
  convert_to_float_ = spec.encoding == AudioEncoding::kPcmF32le &&
                      !(format_tag_ == kFormatFloat && bits_per_sample_ == 32);
  absl::StatusOr<std::unique_ptr<AudioDecoder>> decoder = Create(spec, output_rate_hz_);
  if (!decoder.ok()) return Invalid(decoder.status().message());
  samples_ = *std::move(decoder);
  samples_->LimitSamplesPerDecode(max_samples_per_decode_);
  in_data_ = true;  // only with a decoder for the samples
  return absl::OkStatus();
}

absl::Status WavStreamDecoder::ReadFormat(absl::string_view fmt) {
  int tag = static_cast<int>(Le(fmt, 0, 2));
  channels_ = static_cast<int>(Le(fmt, 2, 2));
  sample_rate_hz_ = static_cast<int>(std::min<uint32_t>(Le(fmt, 4, 4), 1u << 30));
  const int block_align = static_cast<int>(Le(fmt, 12, 2));
  bits_per_sample_ = static_cast<int>(Le(fmt, 14, 2));
  if (tag == kFormatExtensible) {
    if (fmt.size() < 40) return Invalid("a WAVE_FORMAT_EXTENSIBLE fmt chunk under 40 bytes");
    tag = static_cast<int>(Le(fmt, 24, 2));  // the sub-format GUID's first two bytes
  }
  const bool supported =
      (tag == kFormatPcm && (bits_per_sample_ == 8 || bits_per_sample_ == 16 ||
                             bits_per_sample_ == 24 || bits_per_sample_ == 32)) ||
      (tag == kFormatFloat && (bits_per_sample_ == 32 || bits_per_sample_ == 64)) ||
      ((tag == kFormatMulaw || tag == kFormatAlaw) && bits_per_sample_ == 8);
  if (!supported) {
    return Unsupported(absl::StrCat("format ", tag, " with ", bits_per_sample_,
                                    " bits is not supported (PCM 8/16/24/32-bit, float 32/64-bit, "
                                    "mu-law, A-law)"));
  }
  if (channels_ < 1 || channels_ > 8) {
    return Invalid(absl::StrCat("the fmt chunk's ", channels_, " channels are outside 1 to 8"));
  }
  if (sample_rate_hz_ < 8000 || sample_rate_hz_ > 48000) {
    return Unsupported(
        absl::StrCat("the fmt chunk's ", sample_rate_hz_, " Hz is outside 8000 to 48000"));
  }
  if (block_align != bits_per_sample_ / 8 * channels_) {
    return Invalid("the fmt chunk's block align does not match its channels and bits");
  }
  if (absl::Status status =
          CheckDeclaredFormat("WAV", "the fmt chunk", sample_rate_hz_, channels_, declared_);
      !status.ok()) {
    return status;
  }
  format_tag_ = tag;
  have_format_ = true;
  return absl::OkStatus();
}

absl::Status WavStreamDecoder::DecodeData(absl::string_view bytes, std::vector<float>* out,
                                          int64_t* clipped) {
  if (data_remaining_ >= 0) {  // bytes after a sized data chunk are other chunks: ignored
    bytes = bytes.substr(0, static_cast<size_t>(std::min<int64_t>(
                                data_remaining_, static_cast<int64_t>(bytes.size()))));
    data_remaining_ -= static_cast<int64_t>(bytes.size());
  }
  if (!convert_to_float_) return Prefixed(samples_->Decode(bytes, out, clipped));
  // Other sample formats to 32-bit floats, whole samples at a time.
  const size_t width = static_cast<size_t>(bits_per_sample_ / 8);
  if (max_samples_per_decode_ > 0) {
    // Bounded before converting (8-bit samples take 4 times their bytes as floats), as the PCM
    // decoder bounds its own: the frames at the output rate, rounded up.
    const int64_t frames = static_cast<int64_t>((carry_.size() + bytes.size()) / width) / channels_;
    const int64_t output_frames =
        (frames * output_rate_hz_ + sample_rate_hz_ - 1) / sample_rate_hz_;
    if (absl::Status status = CheckFramesPerDecode("WAV", output_frames, max_samples_per_decode_);
        !status.ok()) {
      return status;
    }
  }
  carry_.append(bytes.data(), bytes.size());
  const size_t count = carry_.size() / width;
  converted_.resize(count * 4);
  for (size_t i = 0; i < count; ++i) {
    const char* p = carry_.data() + i * width;
    float value;
    if (format_tag_ == kFormatFloat) {  // 64-bit
      double d;
      std::memcpy(&d, p, 8);
      // Clamped in double, as engine/io reads a whole file: 1e300 would not fit a float (NaN and
      // Inf pass, for the float decoder to refuse).
      if (std::isfinite(d) && (d > 1.0 || d < -1.0)) {
        d = d > 1.0 ? 1.0 : -1.0;
        if (clipped != nullptr) ++*clipped;
      }
      value = static_cast<float>(d);
    } else if (width == 1) {  // 8-bit PCM is unsigned
      value = (static_cast<uint8_t>(p[0]) - 128) / 128.0f;
    } else {
      // The little-endian integer read unsigned, made negative when its top bit is set (no shift
      // of a negative value), then scaled by 2^(bits-1).
      uint64_t u = 0;
      for (size_t b = width; b-- > 0;) u = (u << 8) | static_cast<uint8_t>(p[b]);
      int64_t v = static_cast<int64_t>(u);
      if ((u >> (bits_per_sample_ - 1)) != 0) v -= int64_t{1} << bits_per_sample_;
      value = static_cast<float>(static_cast<double>(v) /
                                 static_cast<double>(int64_t{1} << (bits_per_sample_ - 1)));
    }
    std::memcpy(&converted_[i * 4], &value, 4);
  }
  carry_.erase(0, count * width);
  return Prefixed(samples_->Decode(converted_, out, clipped));
}

absl::Status WavStreamDecoder::Finish(std::vector<float>* out) {
  if (!in_data_) {
    if (!riff_checked_ && header_.empty()) return Invalid("no WAV data in the input");
    return Invalid("the stream ended before its data chunk");
  }
  const absl::Status inner = Prefixed(samples_->Finish(out));
  if (!carry_.empty()) {
    return Invalid(
        absl::StrCat("the stream ends with ", carry_.size(), " bytes of an incomplete sample"));
  }
  return inner;
}

absl::Status WavStreamDecoder::Drain(std::vector<float>* out) {
  return samples_ == nullptr ? absl::OkStatus() : samples_->Drain(out);
}

void WavStreamDecoder::LimitSamplesPerDecode(int64_t max_samples) {
  max_samples_per_decode_ = max_samples;
  if (samples_ != nullptr) samples_->LimitSamplesPerDecode(max_samples);
}

}  // namespace speechllm::streaming
