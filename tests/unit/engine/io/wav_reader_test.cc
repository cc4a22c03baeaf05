// WAV parsing (label unit): float samples beyond +-1 are clamped and counted while NaN and Inf stay
// for the caller to refuse; a data size past the end reads the whole frames present; integer
// formats scale by 1 / 2^(bits-1).
#include "engine/io/wav_reader.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace speechllm::engine {
namespace {

void PutU32(std::string* s, uint32_t v) { s->append(reinterpret_cast<const char*>(&v), 4); }
void PutU16(std::string* s, uint16_t v) { s->append(reinterpret_cast<const char*>(&v), 2); }

// A WAV of `format` (1 PCM, 3 float) whose data chunk holds `data`.
std::string Wav(uint16_t format, uint16_t channels, uint32_t rate, uint16_t bits,
                const std::string& data) {
  std::string wav = "RIFF";
  PutU32(&wav, static_cast<uint32_t>(36 + data.size()));
  wav += "WAVEfmt ";
  PutU32(&wav, 16);
  PutU16(&wav, format);
  PutU16(&wav, channels);
  PutU32(&wav, rate);
  PutU32(&wav, rate * channels * bits / 8);
  PutU16(&wav, static_cast<uint16_t>(channels * bits / 8));
  PutU16(&wav, bits);
  wav += "data";
  PutU32(&wav, static_cast<uint32_t>(data.size()));
  return wav + data;
}

template <typename T>
std::string Bytes(const std::vector<T>& values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(T));
}

TEST(WavReaderTest, FloatsBeyondOneAreClampedAndCountedWhileNonFiniteOnesStay) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  absl::StatusOr<WavAudio> f32 =
      ParseWav(Wav(3, 2, 16000, 32, Bytes<float>({1e20f, 3e38f, -5.0f, 0.25f, nan, 1.0f})));
  ASSERT_TRUE(f32.ok()) << f32.status();
  std::printf("float32 samples: %g %g %g %g %g %g, %lld clipped\n", f32->samples[0],
              f32->samples[1], f32->samples[2], f32->samples[3], f32->samples[4], f32->samples[5],
              static_cast<long long>(f32->num_clipped));
  EXPECT_EQ(f32->samples[0], 1.0f);
  EXPECT_EQ(f32->samples[1], 1.0f);
  EXPECT_EQ(f32->samples[2], -1.0f);
  EXPECT_EQ(f32->samples[3], 0.25f);
  EXPECT_TRUE(std::isnan(f32->samples[4]));
  EXPECT_EQ(f32->num_clipped, 3);
  // Two channels of 3e38 used to sum to inf in the mean: the mono mix stays finite.
  const std::vector<float> mono = f32->Mono();
  EXPECT_EQ(mono[0], 1.0f);
  EXPECT_EQ(mono[1], -0.375f);

  const double inf = std::numeric_limits<double>::infinity();
  absl::StatusOr<WavAudio> f64 = ParseWav(Wav(3, 1, 16000, 64, Bytes<double>({1e300, -0.5, inf})));
  ASSERT_TRUE(f64.ok()) << f64.status();
  EXPECT_EQ(f64->samples[0], 1.0f);
  EXPECT_EQ(f64->samples[1], -0.5f);
  EXPECT_TRUE(std::isinf(f64->samples[2]));
  EXPECT_EQ(f64->num_clipped, 1);
}

TEST(WavReaderTest, ACutDataChunkReadsTheWholeFramesPresentAndBadHeadersAreRefused) {
  std::string cut = Wav(1, 1, 16000, 16, Bytes<int16_t>({16384, -32768, 7}));
  cut.pop_back();
  EXPECT_EQ(ParseWav(cut)->samples, (std::vector<float>{0.5f, -1.0f}));
  for (const std::string& bad :
       {std::string("RIFF....WAVE"), Wav(2, 1, 16000, 16, "ab"), Wav(1, 0, 16000, 16, "ab")}) {
    EXPECT_EQ(ParseWav(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad.size();
  }
}

}  // namespace
}  // namespace speechllm::engine
