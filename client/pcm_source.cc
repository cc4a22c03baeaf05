#include "client/pcm_source.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "client/container_file.h"
#include "client/opus_encoder.h"
#include "engine/io/wav_reader.h"

namespace speechllm::client {

using speechllm::v1::AudioFormat;

double PcmAudio::duration_seconds() const {
  const int64_t bytes_per_second = BytesPerSecond(format);
  return bytes_per_second > 0 ? static_cast<double>(data.size()) / bytes_per_second
                              : container_seconds;
}

int BytesPerSample(Encoding encoding) {
  switch (encoding) {
    case AudioFormat::PCM_S16LE:
      return 2;
    case AudioFormat::PCM_F32LE:
      return 4;
    case AudioFormat::MULAW:
    case AudioFormat::ALAW:
      return 1;
    default:
      return 0;
  }
}

int64_t BytesPerSecond(const AudioFormat& format) {
  const int channels = format.channels() == 0 ? 1 : format.channels();
  if (format.sample_rate_hz() <= 0 || channels < 0) return 0;
  return static_cast<int64_t>(BytesPerSample(format.encoding())) * format.sample_rate_hz() *
         channels;
}

std::string EncodePcmS16le(absl::Span<const float> samples) {
  std::string bytes(samples.size() * 2, '\0');
  for (size_t i = 0; i < samples.size(); ++i) {
    const float clipped = std::clamp(std::isnan(samples[i]) ? 0.0f : samples[i], -1.0f, 1.0f);
    const long scaled = std::lround(clipped * 32768.0f);
    const auto value = static_cast<int16_t>(std::clamp<long>(scaled, -32768, 32767));
    const auto bits = static_cast<uint16_t>(value);
    bytes[2 * i] = static_cast<char>(bits & 0xff);
    bytes[2 * i + 1] = static_cast<char>(bits >> 8);
  }
  return bytes;
}

std::vector<float> DecodePcmS16le(absl::string_view bytes) {
  std::vector<float> samples(bytes.size() / 2);
  for (size_t i = 0; i < samples.size(); ++i) {
    const auto lo = static_cast<unsigned char>(bytes[2 * i]);
    const auto hi = static_cast<unsigned char>(bytes[2 * i + 1]);
    samples[i] = static_cast<int16_t>(lo | (hi << 8)) / 32768.0f;
  }
  return samples;
}

std::string EncodePcmF32le(absl::Span<const float> samples) {
  std::string bytes(samples.size() * 4, '\0');
  for (size_t i = 0; i < samples.size(); ++i) {
    uint32_t bits;
    std::memcpy(&bits, &samples[i], 4);
    for (int b = 0; b < 4; ++b) bytes[4 * i + b] = static_cast<char>((bits >> (8 * b)) & 0xff);
  }
  return bytes;
}

absl::StatusOr<std::string> EncodeSamples(absl::Span<const float> samples, Encoding encoding) {
  switch (encoding) {
    case AudioFormat::PCM_S16LE:
      return EncodePcmS16le(samples);
    case AudioFormat::PCM_F32LE:
      return EncodePcmF32le(samples);
    default:
      return absl::InvalidArgumentError(absl::StrCat("cannot encode float samples as ",
                                                     AudioFormat::Encoding_Name(encoding),
                                                     "; use PCM_S16LE or PCM_F32LE"));
  }
}

absl::StatusOr<PcmAudio> ReadWavAsPcm(const std::string& path, Encoding encoding) {
  if (encoding != AudioFormat::PCM_S16LE && encoding != AudioFormat::PCM_F32LE &&
      encoding != AudioFormat::WAV) {
    return absl::InvalidArgumentError(absl::StrCat("cannot send a WAV file as ",
                                                   AudioFormat::Encoding_Name(encoding),
                                                   "; use PCM_S16LE, PCM_F32LE or WAV"));
  }
  // Parsing also validates the file when its bytes are sent unchanged.
  absl::StatusOr<engine::WavAudio> wav = engine::ReadWavFile(path);
  if (!wav.ok()) return wav.status();
  PcmAudio audio;
  audio.format.set_encoding(encoding);
  audio.format.set_sample_rate_hz(wav->sample_rate_hz);
  audio.format.set_channels(wav->num_channels);
  if (encoding == AudioFormat::WAV) {
    std::ifstream file(path, std::ios::binary);
    audio.data.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
    if (file.bad()) return absl::NotFoundError(absl::StrCat("cannot read ", path));
    return audio;
  }
  absl::StatusOr<std::string> data = EncodeSamples(wav->samples, encoding);
  if (!data.ok()) return data.status();
  audio.data = *std::move(data);
  return audio;
}

namespace {

absl::StatusOr<std::string> ReadFileBytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  return bytes;
}

uint64_t Le(const std::string& bytes, size_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

}  // namespace

absl::StatusOr<PcmAudio> ReadOggOpusFile(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFileBytes(path);
  if (!bytes.ok()) return bytes.status();
  // Page 1 holds the OpusHead: header 27 bytes + segment table, then "OpusHead".
  if (bytes->size() < 47 || bytes->compare(0, 4, "OggS") != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not an Ogg file"));
  }
  const size_t head = 27 + static_cast<unsigned char>((*bytes)[26]);
  if (bytes->size() < head + 19 || bytes->compare(head, 8, "OpusHead") != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is Ogg but not Ogg Opus"));
  }
  const uint64_t pre_skip = Le(*bytes, head + 10, 2);
  PcmAudio audio;
  audio.format.set_encoding(AudioFormat::OGG_OPUS);
  // The last page's granule position: 48 kHz samples including the pre-skip (RFC 7845 4).
  const size_t last = bytes->rfind("OggS");
  if (last != std::string::npos && last + 14 <= bytes->size()) {
    const uint64_t granule = Le(*bytes, last + 6, 8);
    if (granule > pre_skip && granule != ~uint64_t{0})
      audio.container_seconds = static_cast<double>(granule - pre_skip) / 48000.0;
  }
  audio.data = *std::move(bytes);
  return audio;
}

absl::StatusOr<PcmAudio> ReadWavAsOggOpus(const std::string& path, int bitrate_bps) {
  absl::StatusOr<engine::WavAudio> wav = engine::ReadWavFile(path);
  if (!wav.ok()) return wav.status();
  OggOpusEncoderOptions options;
  options.sample_rate_hz = wav->sample_rate_hz;
  options.channels = wav->num_channels;
  options.bitrate_bps = bitrate_bps;
  absl::StatusOr<std::string> data = EncodeOggOpus(wav->samples, options);
  if (!data.ok()) return data.status();
  PcmAudio audio;
  audio.format.set_encoding(AudioFormat::OGG_OPUS);
  audio.container_seconds = wav->duration_seconds();
  audio.data = *std::move(data);
  return audio;
}

absl::StatusOr<PcmAudio> ReadAudioFile(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  char magic[4] = {0, 0, 0, 0};
  file.read(magic, 4);
  if (!file.is_open()) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  if (!file) return absl::InvalidArgumentError(absl::StrCat(path, " is shorter than 4 bytes"));
  if (std::memcmp(magic, "OggS", 4) == 0) return ReadOggOpusFile(path);
  if (std::memcmp(magic, "RIFF", 4) == 0) {
    absl::StatusOr<PcmAudio> pcm = ReadWavAsPcm(path);
    if (pcm.ok() || !absl::IsInvalidArgument(pcm.status())) return pcm;
    // A WAV this reader does not decode (mu-law, A-law): the server's WAV decoder reads more
    // formats (README), so the file goes as it is, unpaced (no byte rate known here), and a file
    // the server cannot read either gets its error.
    absl::StatusOr<std::string> bytes = ReadFileBytes(path);
    if (!bytes.ok()) return bytes.status();
    PcmAudio audio;
    audio.format.set_encoding(AudioFormat::WAV);
    audio.data = *std::move(bytes);
    return audio;
  }
  const bool webm = std::memcmp(magic, "\x1A\x45\xDF\xA3", 4) == 0;
  if (webm || std::memcmp(magic, "fLaC", 4) == 0 || std::memcmp(magic, "ID3", 3) == 0) {
    absl::StatusOr<std::string> bytes = ReadFileBytes(path);
    if (!bytes.ok()) return bytes.status();
    // MP3 files start with ID3 tags too: FLAC only when "fLaC" follows the tag.
    if (magic[0] == 'I' &&
        bytes->substr(std::min(FlacStreamStart(*bytes), bytes->size()), 4) != "fLaC") {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": an ID3 tag before something other than FLAC (MP3 is not supported)"));
    }
    return ContainerAudio(*std::move(bytes), webm ? AudioFormat::WEBM_OPUS : AudioFormat::FLAC);
  }
  return absl::InvalidArgumentError(absl::StrCat(
      path, " is none of WAV (RIFF), Ogg Opus (OggS), WebM (1A 45 DF A3) and FLAC (fLaC)"));
}

}  // namespace speechllm::client
