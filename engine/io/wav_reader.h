// WAV file reading: RIFF/WAVE with PCM 8/16/24/32-bit integer or 32/64-bit IEEE float samples
// (WAVE_FORMAT_EXTENSIBLE accepted), any channel count. Torch-free and stateless; used by the
// offline tools, the benchmark, the client and the tests from any thread.
#ifndef SPEECHLLM_ENGINE_IO_WAV_READER_H_
#define SPEECHLLM_ENGINE_IO_WAV_READER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace speechllm::engine {

struct WavAudio {
  int sample_rate_hz = 0;
  int num_channels = 0;
  // Interleaved, in [-1, 1]: integer PCM scaled by 1 / 2^(bits-1); finite floats beyond +-1
  // clamped (counted in num_clipped); NaN and Inf float samples kept as they are.
  std::vector<float> samples;
  int64_t num_clipped = 0;

  int64_t num_frames() const {
    return num_channels > 0 ? static_cast<int64_t>(samples.size()) / num_channels : 0;
  }
  double duration_seconds() const {
    return sample_rate_hz > 0 ? static_cast<double>(num_frames()) / sample_rate_hz : 0;
  }
  // The mean of the channels of each frame.
  std::vector<float> Mono() const;
};

// Parses WAV bytes; INVALID_ARGUMENT naming the problem for anything that is not a supported WAV.
absl::StatusOr<WavAudio> ParseWav(absl::string_view bytes);
// Reads and parses a file; NOT_FOUND if it cannot be read.
absl::StatusOr<WavAudio> ReadWavFile(const std::string& path);
// Reads a 16 kHz (or `expected_rate_hz`) file as mono samples; INVALID_ARGUMENT for another rate.
absl::StatusOr<std::vector<float>> ReadMonoWavFile(const std::string& path, int expected_rate_hz);

// Serializes 16-bit PCM WAV (samples clipped to [-1, 1]); for tests and tools.
std::string EncodeWav16(const std::vector<float>& interleaved, int sample_rate_hz,
                        int num_channels);

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_IO_WAV_READER_H_
