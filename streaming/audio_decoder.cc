// AudioDecoder::Create: picks the decoder for an encoding and puts the Resampler behind decoders
// whose rate is not the output rate.
#include "streaming/audio_decoder.h"

#include <string>
#include <utility>

#include "absl/strings/cord.h"

#include "absl/strings/str_cat.h"
#include "streaming/flac_decoder.h"
#include "streaming/g711_decoder.h"
#include "streaming/ogg_opus_decoder.h"
#include "streaming/opus_packet_decoder.h"
#include "streaming/pcm_decoder.h"
#include "streaming/resampler.h"
#include "streaming/sniffing_decoder.h"
#include "streaming/wav_stream_decoder.h"
#include "streaming/webm_opus_decoder.h"

namespace speechllm::streaming {
namespace {

constexpr int kMinRateHz = 8000;
constexpr int kMaxRateHz = 48000;
constexpr int kMaxChannels = 8;
constexpr char kNonFiniteUrl[] = "type.speechllm/streaming.NonFiniteAudio";
constexpr char kTooLongUrl[] = "type.speechllm/streaming.AudioTooLong";
constexpr char kUnsupportedUrl[] = "type.speechllm/streaming.UnsupportedAudio";
constexpr char kDeclaredFormatUrl[] = "type.speechllm/streaming.DeclaredFormat";

bool IsOpusRate(int rate_hz) {
  return rate_hz == 8000 || rate_hz == 12000 || rate_hz == 16000 || rate_hz == 24000 ||
         rate_hz == 48000;
}

// A decoder at another rate followed by the Resampler.
class ResamplingDecoder : public AudioDecoder {
 public:
  ResamplingDecoder(std::unique_ptr<AudioDecoder> inner, std::unique_ptr<Resampler> resampler,
                    int input_rate_hz, int output_rate_hz)
      : inner_(std::move(inner)),
        resampler_(std::move(resampler)),
        input_rate_hz_(input_rate_hz),
        output_rate_hz_(output_rate_hz) {}

  absl::Status Decode(absl::string_view bytes, std::vector<float>* out, int64_t* clipped) override {
    scratch_.clear();
    const absl::Status inner = inner_->Decode(bytes, &scratch_, clipped);
    if (inner.ok()) return resampler_->Process(scratch_, out);
    // The samples before a malformed one still come out, with the resampler's delayed tail: the
    // decoder is not used after an error, so this is the stream's end (finals first).
    if (!IsAudioTooLongError(inner) && resampler_->Process(scratch_, out).ok()) {
      resampler_->Flush(out).IgnoreError();
    }
    return inner;
  }
  absl::Status Finish(std::vector<float>* out) override {
    scratch_.clear();
    // The samples before an error (a partial sample at the end) still come out: finals first.
    const absl::Status inner = inner_->Finish(&scratch_);
    if (absl::Status status = resampler_->Process(scratch_, out); !status.ok()) return status;
    if (absl::Status status = resampler_->Flush(out); !status.ok()) return status;
    return inner;
  }
  absl::Status Drain(std::vector<float>* out) override {
    scratch_.clear();
    if (absl::Status status = inner_->Drain(&scratch_); !status.ok()) return status;
    if (absl::Status status = resampler_->Process(scratch_, out); !status.ok()) return status;
    return resampler_->Drain(out);
  }
  bool ChunksArePackets() const override { return inner_->ChunksArePackets(); }
  int64_t HeldSamples() const override {
    return resampler_->held_output_samples() +
           (inner_->HeldSamples() * output_rate_hz_ + input_rate_hz_ / 2) / input_rate_hz_;
  }
  // The inner decoder counts samples at its own rate: the bound is scaled to it (rounded up).
  void LimitSamplesPerDecode(int64_t max_samples) override {
    inner_->LimitSamplesPerDecode(
        max_samples <= 0 ? 0
                         : (max_samples * input_rate_hz_ + output_rate_hz_ - 1) / output_rate_hz_);
  }

 private:
  std::unique_ptr<AudioDecoder> inner_;
  std::unique_ptr<Resampler> resampler_;
  const int64_t input_rate_hz_;
  const int64_t output_rate_hz_;
  std::vector<float> scratch_;  // the inner decoder's samples of one call
};

absl::StatusOr<std::unique_ptr<AudioDecoder>> WithResampler(std::unique_ptr<AudioDecoder> inner,
                                                            int input_rate_hz, int output_rate_hz) {
  if (input_rate_hz == output_rate_hz) return inner;
  absl::StatusOr<std::unique_ptr<Resampler>> resampler =
      Resampler::Create(input_rate_hz, output_rate_hz);
  if (!resampler.ok()) return resampler.status();
  return std::make_unique<ResamplingDecoder>(std::move(inner), *std::move(resampler), input_rate_hz,
                                             output_rate_hz);
}

// INVALID_ARGUMENT marked with a payload under `url`, so callers can tell its kind.
absl::Status MarkedInvalid(const char* url, absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(url, absl::Cord("1"));
  return status;
}

}  // namespace

absl::Status NonFiniteAudioError(absl::string_view message) {
  return MarkedInvalid(kNonFiniteUrl, message);
}

bool IsNonFiniteAudioError(const absl::Status& status) {
  return status.GetPayload(kNonFiniteUrl).has_value();
}

absl::Status UnsupportedAudioError(absl::string_view message) {
  return MarkedInvalid(kUnsupportedUrl, message);
}

bool IsUnsupportedAudioError(const absl::Status& status) {
  return status.GetPayload(kUnsupportedUrl).has_value();
}

absl::Status AudioTooLongError(absl::string_view message) {
  return MarkedInvalid(kTooLongUrl, message);
}

bool IsAudioTooLongError(const absl::Status& status) {
  return status.GetPayload(kTooLongUrl).has_value();
}

absl::Status DeclaredFormatError(absl::string_view field, absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kDeclaredFormatUrl, absl::Cord(field));
  return status;
}

std::string DeclaredFormatField(const absl::Status& status) {
  auto field = status.GetPayload(kDeclaredFormatUrl);  // absl::optional before C++17 Abseil
  return field.has_value() ? std::string(*field) : std::string();
}

absl::Status CheckFramesPerDecode(absl::string_view encoding_name, int64_t num_frames,
                                  int64_t max_frames) {
  if (max_frames <= 0 || num_frames <= max_frames) return absl::OkStatus();
  return AudioTooLongError(absl::StrCat(encoding_name, ": these bytes hold ", num_frames,
                                        " sample frames, more than the ", max_frames,
                                        " one call may decode"));
}

absl::Status CheckDeclaredFormat(absl::string_view encoding_name, absl::string_view header,
                                 int rate_hz, int channels, const AudioFormatSpec& declared) {
  if (declared.sample_rate_hz != 0 && declared.sample_rate_hz != rate_hz) {
    return DeclaredFormatError("sample_rate_hz",
                               absl::StrCat(encoding_name, ": ", header, " says ", rate_hz,
                                            " Hz but the config declared audio.sample_rate_hz ",
                                            declared.sample_rate_hz, " (0 = use ", header, ")"));
  }
  if (declared.channels != 0 && declared.channels != channels) {
    return DeclaredFormatError("channels",
                               absl::StrCat(encoding_name, ": ", header, " says ", channels,
                                            " channel(s) but the config declared audio.channels ",
                                            declared.channels, " (0 = use ", header, ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckSamplesPerDecode(absl::string_view encoding_name, int64_t produced,
                                   int64_t max_samples, int output_rate_hz,
                                   absl::string_view where) {
  if (max_samples <= 0 || produced <= max_samples) return absl::OkStatus();
  return AudioTooLongError(absl::StrCat(encoding_name, ": these bytes decode to more than ",
                                        max_samples, " samples (", max_samples / output_rate_hz,
                                        " s) by ", where));
}

absl::StatusOr<std::unique_ptr<AudioDecoder>> AudioDecoder::Create(const AudioFormatSpec& format,
                                                                   int output_rate_hz) {
  if (output_rate_hz < kMinRateHz || output_rate_hz > kMaxRateHz) {
    return absl::InvalidArgumentError(absl::StrCat(
        "output rate ", output_rate_hz, " Hz is outside ", kMinRateHz, " to ", kMaxRateHz));
  }
  const bool container =
      format.encoding == AudioEncoding::kOggOpus || format.encoding == AudioEncoding::kWebmOpus ||
      format.encoding == AudioEncoding::kFlac || format.encoding == AudioEncoding::kSniffed ||
      format.encoding == AudioEncoding::kWav;
  if (container && (format.channels < 0 || format.channels > kMaxChannels)) {
    // 0: whatever the container says.
    return absl::InvalidArgumentError(
        absl::StrCat("audio.channels must be 0 to ", kMaxChannels, ", got ", format.channels));
  }
  switch (format.encoding) {
    case AudioEncoding::kPcmS16le:
    case AudioEncoding::kPcmF32le:
    case AudioEncoding::kMulaw:
    case AudioEncoding::kAlaw: {
      if (format.channels < 1 || format.channels > kMaxChannels) {
        return absl::InvalidArgumentError(
            absl::StrCat("audio.channels must be 1 to ", kMaxChannels, ", got ", format.channels));
      }
      if (format.sample_rate_hz < kMinRateHz || format.sample_rate_hz > kMaxRateHz) {
        return absl::InvalidArgumentError(absl::StrCat("audio.sample_rate_hz ",
                                                       format.sample_rate_hz, " is outside ",
                                                       kMinRateHz, " to ", kMaxRateHz));
      }
      std::unique_ptr<AudioDecoder> decoder;
      if (format.encoding == AudioEncoding::kMulaw || format.encoding == AudioEncoding::kAlaw) {
        decoder = std::make_unique<G711Decoder>(format);
      } else {
        decoder = std::make_unique<PcmDecoder>(format);
      }
      return WithResampler(std::move(decoder), format.sample_rate_hz, output_rate_hz);
    }
    case AudioEncoding::kOggOpus:
    case AudioEncoding::kWebmOpus: {
      const int opus_rate = IsOpusRate(output_rate_hz) ? output_rate_hz : 48000;
      std::unique_ptr<AudioDecoder> decoder;
      if (format.encoding == AudioEncoding::kOggOpus) {
        decoder = std::make_unique<OggOpusDecoder>(format, opus_rate);
      } else {
        decoder = std::make_unique<WebmOpusDecoder>(format, opus_rate);
      }
      return WithResampler(std::move(decoder), opus_rate, output_rate_hz);
    }
    case AudioEncoding::kWav:
      return std::unique_ptr<AudioDecoder>(new WavStreamDecoder(format, output_rate_hz));
    case AudioEncoding::kSniffed:
      return std::unique_ptr<AudioDecoder>(new SniffingDecoder(format, output_rate_hz));
    case AudioEncoding::kFlac: {
      absl::StatusOr<std::unique_ptr<FlacDecoder>> decoder =
          FlacDecoder::Create(format, output_rate_hz);
      if (!decoder.ok()) return decoder.status();
      return std::unique_ptr<AudioDecoder>(*std::move(decoder));
    }
    case AudioEncoding::kOpusPacket: {
      const int opus_rate = IsOpusRate(output_rate_hz) ? output_rate_hz : 48000;
      absl::StatusOr<std::unique_ptr<OpusPacketDecoder>> decoder =
          OpusPacketDecoder::Create(format.channels == 0 ? 1 : format.channels, opus_rate);
      if (!decoder.ok()) return decoder.status();
      return WithResampler(*std::move(decoder), opus_rate, output_rate_hz);
    }
  }
  return absl::InvalidArgumentError("unknown audio encoding");
}

}  // namespace speechllm::streaming
