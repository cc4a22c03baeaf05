#include "server/audio_config.h"

#include "absl/strings/str_cat.h"
#include "streaming/audio_decoder.h"
#include "streaming/sniffing_decoder.h"

namespace speechllm::server {
namespace {

using v1::AudioFormat;

constexpr int kMinRateHz = kMinSampleRateHz;
constexpr int kMaxRateHz = kMaxSampleRateHz;
constexpr int kMaxChannels = 8;
constexpr int kG711DefaultRateHz = 8000;

// A declared rate (0: not declared, else kMinRateHz to `max_rate_hz`) and channel count (0 to
// kMaxChannels); BAD_CONFIG naming the field, `suffix` ending its message.
absl::Status CheckDeclaredRange(int rate, int channels, int max_rate_hz, absl::string_view suffix) {
  if (rate != 0 && (rate < kMinRateHz || rate > max_rate_hz)) {
    return BadConfig("audio.sample_rate_hz",
                     absl::StrCat(rate, " is outside ", kMinRateHz, " to ", max_rate_hz, suffix));
  }
  if (channels < 0 || channels > kMaxChannels) {
    return BadConfig("audio.channels", absl::StrCat(channels, " is outside 1 to ", kMaxChannels));
  }
  return absl::OkStatus();
}

}  // namespace

const char* AudioErrorReason(const absl::Status& status) {
  if (streaming::IsNonFiniteAudioError(status)) return "NON_FINITE_AUDIO";
  if (streaming::IsUnsupportedAudioError(status)) return "UNSUPPORTED_ENCODING";
  return "AUDIO_DECODE_ERROR";
}

// The audio part of the config (API.md 2.1 and AudioFormat); the rules per encoding are in
// ConvertConfig's comment in proto_convert.h.
absl::Status ConvertAudio(const AudioFormat& audio, bool for_recognize,
                          absl::string_view audio_bytes, StreamSetup* setup) {
  AudioFormat::Encoding encoding = audio.encoding();
  if (encoding == AudioFormat::ENCODING_UNSPECIFIED) {
    if (!for_recognize) {
      // A stream's container is told by its first bytes when they come (SniffingDecoder); the
      // effective config keeps ENCODING_UNSPECIFIED. Rate and channels follow the container rules.
      if (absl::Status status = CheckDeclaredRange(audio.sample_rate_hz(), audio.channels(),
                                                   streaming::kMaxFlacRateHz, "");
          !status.ok()) {
        return status;
      }
      setup->audio.encoding = streaming::AudioEncoding::kSniffed;
      setup->audio.sample_rate_hz = audio.sample_rate_hz();
      setup->audio.channels = audio.channels();
      return absl::OkStatus();
    }
    // The same magic bytes as a stream's (SniffingDecoder), told before decoding.
    absl::StatusOr<streaming::AudioEncoding> sniffed = streaming::SniffContainer(audio_bytes);
    if (!sniffed.ok()) {
      return BadConfig("audio.encoding", std::string(sniffed.status().message()),
                       "UNSUPPORTED_ENCODING");
    }
    encoding = *sniffed == streaming::AudioEncoding::kWav        ? AudioFormat::WAV
               : *sniffed == streaming::AudioEncoding::kWebmOpus ? AudioFormat::WEBM_OPUS
               : *sniffed == streaming::AudioEncoding::kFlac     ? AudioFormat::FLAC
                                                                 : AudioFormat::OGG_OPUS;
  }
  setup->encoding = encoding;
  const int rate = audio.sample_rate_hz();
  const int channels = audio.channels();
  // 0 means "not declared" where the encoding allows it.
  auto check_rate = [&]() { return CheckDeclaredRange(rate, channels, kMaxRateHz, ""); };
  using streaming::AudioEncoding;
  switch (encoding) {
    case AudioFormat::PCM_S16LE:
    case AudioFormat::PCM_F32LE:
    case AudioFormat::MULAW:
    case AudioFormat::ALAW: {
      const bool g711 = encoding == AudioFormat::MULAW || encoding == AudioFormat::ALAW;
      if (rate == 0 && !g711) {
        return BadConfig("audio.sample_rate_hz", absl::StrCat("must be set for raw PCM (",
                                                              kMinRateHz, " to ", kMaxRateHz, ")"));
      }
      if (absl::Status status = check_rate(); !status.ok()) return status;
      setup->audio.encoding = encoding == AudioFormat::PCM_S16LE   ? AudioEncoding::kPcmS16le
                              : encoding == AudioFormat::PCM_F32LE ? AudioEncoding::kPcmF32le
                              : encoding == AudioFormat::MULAW     ? AudioEncoding::kMulaw
                                                                   : AudioEncoding::kAlaw;
      setup->audio.sample_rate_hz = rate == 0 ? kG711DefaultRateHz : rate;
      setup->audio.channels = channels == 0 ? 1 : channels;
      return absl::OkStatus();
    }
    case AudioFormat::OPUS:
      // Raw packets (one per AudioChunk) cannot be split out of a Recognize blob: streaming only.
      // libopus decodes any packet at 16 kHz; channels (1 or 2, 0 = 1) size the decoder.
      if (for_recognize) break;
      if (rate != 0 && rate != 8000 && rate != 12000 && rate != 16000 && rate != 24000 &&
          rate != 48000) {
        return BadConfig(
            "audio.sample_rate_hz",
            absl::StrCat(rate, " is not an Opus rate (8000, 12000, 16000, 24000 or 48000)"));
      }
      if (channels < 0 || channels > 2)
        return BadConfig("audio.channels", "must be 1 or 2 for OPUS");
      setup->audio.encoding = AudioEncoding::kOpusPacket;
      setup->audio.sample_rate_hz = rate;
      setup->audio.channels = channels == 0 ? 1 : channels;
      return absl::OkStatus();
    case AudioFormat::OGG_OPUS:
    case AudioFormat::WEBM_OPUS:
    case AudioFormat::FLAC:
    case AudioFormat::WAV:
      // Containers: rate and channels are optional (0 = from the header). A declared value must
      // match the header (Opus: the rate may also be 48000, Opus's own), which the decoder
      // checks when it reads the header. FLAC files may be up to 192 kHz.
      if (absl::Status status =
              encoding == AudioFormat::FLAC
                  ? CheckDeclaredRange(rate, channels, streaming::kMaxFlacRateHz, " for FLAC")
                  : check_rate();
          !status.ok()) {
        return status;
      }
      setup->audio.encoding = encoding == AudioFormat::WEBM_OPUS ? AudioEncoding::kWebmOpus
                              : encoding == AudioFormat::FLAC    ? AudioEncoding::kFlac
                              : encoding == AudioFormat::WAV     ? AudioEncoding::kWav
                                                                 : AudioEncoding::kOggOpus;
      setup->audio.sample_rate_hz = rate;
      setup->audio.channels = channels;
      return absl::OkStatus();
    default:
      break;
  }
  return BadConfig(
      "audio.encoding",
      absl::StrCat("encoding ",
                   AudioFormat::Encoding_IsValid(encoding)
                       ? AudioFormat::Encoding_Name(encoding)
                       : absl::StrCat(static_cast<int>(encoding), " (not in the enum)"),
                   " is not supported", encoding == AudioFormat::OPUS ? " by Recognize" : "",
                   "; use PCM_S16LE or PCM_F32LE (8000 to 48000 Hz), MULAW, ALAW, OGG_OPUS, "
                   "WEBM_OPUS, FLAC or WAV",
                   for_recognize ? "" : ", or OPUS packets"),
      "UNSUPPORTED_ENCODING");
}

}  // namespace speechllm::server
