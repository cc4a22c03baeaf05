#include "engine/io/wav_reader.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace speechllm::engine {
namespace {

constexpr uint16_t kFormatPcm = 1;
constexpr uint16_t kFormatFloat = 3;
constexpr uint16_t kFormatExtensible = 0xfffe;

uint32_t ReadU32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint16_t ReadU16(const char* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

absl::Status Bad(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("bad WAV data: ", what));
}

// The header's description of the samples, without converting one.
struct WavLayout {
  int sample_rate_hz = 0;
  int num_channels = 0;
  int64_t num_frames = 0;  // whole sample frames present (a data size past the end reads fewer)
};

// Where the samples are and how they are stored.
struct WavData {
  WavLayout layout;
  bool is_float = false;
  int bits = 0;
  const char* samples = nullptr;  // num_frames * num_channels samples of bits / 8 bytes
};

absl::StatusOr<WavData> FindWavData(absl::string_view bytes) {
  if (bytes.size() < 12 || bytes.substr(0, 4) != "RIFF" || bytes.substr(8, 4) != "WAVE") {
    return Bad("missing RIFF/WAVE header");
  }
  uint16_t format = 0, channels = 0, bits = 0, block_align = 0;
  uint32_t rate = 0;
  bool have_format = false;
  size_t pos = 12;
  while (pos + 8 <= bytes.size()) {
    const absl::string_view id = bytes.substr(pos, 4);
    const uint32_t size = ReadU32(bytes.data() + pos + 4);
    const size_t body = pos + 8;
    if (id == "fmt ") {
      if (size < 16 || body + size > bytes.size()) return Bad("short fmt chunk");
      format = ReadU16(bytes.data() + body);
      channels = ReadU16(bytes.data() + body + 2);
      rate = ReadU32(bytes.data() + body + 4);
      block_align = ReadU16(bytes.data() + body + 12);
      bits = ReadU16(bytes.data() + body + 14);
      if (format == kFormatExtensible) {
        if (size < 40) return Bad("short WAVE_FORMAT_EXTENSIBLE chunk");
        format = ReadU16(bytes.data() + body + 24);  // first two bytes of the sub-format GUID
      }
      have_format = true;
    } else if (id == "data") {
      if (!have_format) return Bad("data chunk before fmt chunk");
      if (channels == 0 || rate == 0) return Bad("zero channels or sample rate");
      const bool is_float = format == kFormatFloat && (bits == 32 || bits == 64);
      const bool is_int =
          format == kFormatPcm && (bits == 8 || bits == 16 || bits == 24 || bits == 32);
      if (!is_float && !is_int) {
        return Bad(absl::StrCat("unsupported sample format ", format, " with ", bits, " bits"));
      }
      const size_t bytes_per_sample = bits / 8;
      if (block_align != bytes_per_sample * channels)
        return Bad("block align does not match the format");
      // A data size past the end (streamed WAV writers leave it unset) reads what is there.
      const size_t available = std::min<size_t>(size, bytes.size() - body);
      WavData data;
      data.layout.sample_rate_hz =
          static_cast<int>(std::min<uint32_t>(rate, std::numeric_limits<int32_t>::max()));
      data.layout.num_channels = channels;
      data.layout.num_frames = static_cast<int64_t>(available / block_align);
      data.is_float = is_float;
      data.bits = bits;
      data.samples = bytes.data() + body;
      return data;
    }
    pos = body + size + (size & 1);  // chunks are word-aligned
  }
  return Bad("no data chunk");
}

}  // namespace

std::vector<float> WavAudio::Mono() const {
  if (num_channels == 1) return samples;
  std::vector<float> mono(static_cast<size_t>(num_frames()));
  for (size_t f = 0; f < mono.size(); ++f) {
    float sum = 0;
    for (int c = 0; c < num_channels; ++c) sum += samples[f * num_channels + c];
    mono[f] = sum / num_channels;
  }
  return mono;
}

absl::StatusOr<WavAudio> ParseWav(absl::string_view bytes) {
  absl::StatusOr<WavData> data = FindWavData(bytes);
  if (!data.ok()) return data.status();
  const size_t bytes_per_sample = data->bits / 8;
  const size_t count = static_cast<size_t>(data->layout.num_frames) * data->layout.num_channels;
  WavAudio audio;
  audio.sample_rate_hz = data->layout.sample_rate_hz;
  audio.num_channels = data->layout.num_channels;
  audio.samples.resize(count);
  const char* p = data->samples;
  for (size_t i = 0; i < count; ++i, p += bytes_per_sample) {
    float v = 0;
    if (data->is_float) {
      double d;
      if (data->bits == 32) {
        std::memcpy(&v, p, 4);
        d = v;
      } else {
        std::memcpy(&d, p, 8);
      }
      // Finite samples beyond +-1 are clamped; NaN and Inf stay, for the caller to refuse.
      if (std::isfinite(d) && (d > 1.0 || d < -1.0)) {
        d = d > 1.0 ? 1.0 : -1.0;
        ++audio.num_clipped;
      }
      v = static_cast<float>(d);
    } else if (data->bits == 8) {
      v = (static_cast<int>(static_cast<uint8_t>(*p)) - 128) / 128.0f;
    } else if (data->bits == 16) {
      int16_t s;
      std::memcpy(&s, p, 2);
      v = s / 32768.0f;
    } else if (data->bits == 24) {
      int32_t s = (static_cast<uint8_t>(p[0]) << 8) | (static_cast<uint8_t>(p[1]) << 16) |
                  (static_cast<uint8_t>(p[2]) << 24);
      v = static_cast<float>(s / 2147483648.0);
    } else {
      int32_t s;
      std::memcpy(&s, p, 4);
      v = static_cast<float>(s / 2147483648.0);
    }
    audio.samples[i] = v;
  }
  return audio;
}

absl::StatusOr<WavAudio> ReadWavFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto audio = ParseWav(buffer.str());
  if (!audio.ok())
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", audio.status().message()));
  return audio;
}

absl::StatusOr<std::vector<float>> ReadMonoWavFile(const std::string& path, int expected_rate_hz) {
  auto audio = ReadWavFile(path);
  if (!audio.ok()) return audio.status();
  if (audio->sample_rate_hz != expected_rate_hz) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is sampled at ", audio->sample_rate_hz,
                                                   " Hz; the model needs ", expected_rate_hz,
                                                   " Hz"));
  }
  return audio->Mono();
}

std::string EncodeWav16(const std::vector<float>& interleaved, int sample_rate_hz,
                        int num_channels) {
  const uint32_t data_bytes = static_cast<uint32_t>(interleaved.size() * 2);
  std::string out;
  auto put32 = [&out](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  auto put16 = [&out](uint16_t v) { out.append(reinterpret_cast<const char*>(&v), 2); };
  out += "RIFF";
  put32(36 + data_bytes);
  out += "WAVEfmt ";
  put32(16);
  put16(kFormatPcm);
  put16(static_cast<uint16_t>(num_channels));
  put32(static_cast<uint32_t>(sample_rate_hz));
  put32(static_cast<uint32_t>(sample_rate_hz * num_channels * 2));
  put16(static_cast<uint16_t>(num_channels * 2));
  put16(16);
  out += "data";
  put32(data_bytes);
  for (float v : interleaved) {
    const float clipped = std::clamp(v, -1.0f, 1.0f);
    put16(static_cast<uint16_t>(
        static_cast<int16_t>(std::lround(std::min(clipped * 32768.0f, 32767.0f)))));
  }
  return out;
}

}  // namespace speechllm::engine
