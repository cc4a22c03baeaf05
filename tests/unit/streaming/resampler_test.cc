// Resampler (libsoxr, SOXR_HQ) (label unit): a clip resampled 16 -> 48 -> 16 kHz keeps >= 40 dB
// SNR in the speech band (100-7000 Hz); any split of the input gives the same output bit for bit;
// output lengths follow the rate ratio, and output plus held output is the input's duration; a
// 1 kHz sine keeps its amplitude and phase; Drain (a client's Flush) releases the held output and
// starts over, and many Drains keep the output on the input's clock.
#include "streaming/resampler.h"

#include <algorithm>
#include <cmath>

#include "engine/io/wav_reader.h"
#include "gtest/gtest.h"
#include "tests/unit/streaming/audio_decoder_test_util.h"

namespace speechllm::streaming {
namespace {

using audio_test::FirstDifference;

std::vector<float> Resample(const std::vector<float>& in, int from, int to,
                            const std::vector<size_t>& chunks = {}) {
  auto resampler = Resampler::Create(from, to);
  EXPECT_TRUE(resampler.ok()) << resampler.status();
  if (!resampler.ok()) return {};
  std::vector<float> out;
  if (chunks.empty()) {
    EXPECT_TRUE((*resampler)->Process(in, &out).ok());
  } else {
    size_t at = 0;
    for (size_t n : chunks) {
      EXPECT_TRUE((*resampler)->Process(absl::MakeConstSpan(in.data() + at, n), &out).ok());
      at += n;
    }
  }
  EXPECT_TRUE((*resampler)->Flush(&out).ok());
  return out;
}

std::vector<float> Clip(const std::string& name) {
  auto samples = engine::ReadMonoWavFile(audio_test::ClipPath(name), 16000);
  EXPECT_TRUE(samples.ok()) << samples.status();
  return samples.ok() ? *samples : std::vector<float>();
}

// Speech band: 100 Hz (below it only hum) to 7000 Hz (under the 7.3 kHz passband edge of SOXR_HQ
// at 16 kHz, 0.913 x 8 kHz).
TEST(ResamplerTest, RoundTrip16To48To16KeepsFortyDecibelsInTheSpeechBand) {
  for (const std::string clip : {"clip_a", "clip_b"}) {
    const std::vector<float> original = Clip(clip);
    ASSERT_FALSE(original.empty());
    const std::vector<float> up = Resample(original, 16000, 48000);
    const std::vector<float> back = Resample(up, 48000, 16000);
    const double snr = audio_test::BandSnrDb(back, original, 16000, 100, 7000);
    const double full = audio_test::BandSnrDb(back, original, 16000, 0, 8000);
    std::printf("%s: %zu -> %zu -> %zu samples; SNR 100-7000 Hz %.1f dB (0-8000 Hz %.1f dB)\n",
                clip.c_str(), original.size(), up.size(), back.size(), snr, full);
    EXPECT_EQ(up.size(), 3 * original.size());
    EXPECT_EQ(back.size(), original.size());
    EXPECT_GE(snr, 40.0);
  }
}

TEST(ResamplerTest, AnySplitGivesTheSameOutput) {
  const std::vector<float> original = Clip("clip_a");
  for (const auto& [from, to] : {std::make_pair(16000, 44100), std::make_pair(44100, 16000),
                                 std::make_pair(8000, 16000), std::make_pair(48000, 16000)}) {
    const std::vector<float> whole = Resample(original, from, to);
    for (uint32_t seed : {1u, 2u, 3u}) {
      const std::vector<size_t> chunks =
          audio_test::RandomSplit(original.size(), seed, seed == 1 ? 50 : 3000);
      EXPECT_EQ(FirstDifference(Resample(original, from, to, chunks), whole), -1)
          << from << " -> " << to << " seed " << seed;
    }
  }
}

TEST(ResamplerTest, LengthsFollowTheRateRatio) {
  for (const auto& [from, to] :
       {std::make_pair(8000, 16000), std::make_pair(22050, 16000), std::make_pair(44100, 16000),
        std::make_pair(48000, 16000), std::make_pair(11025, 16000)}) {
    for (size_t n : {1u, 7u, 441u, 10000u, 44101u}) {
      const std::vector<float> out = Resample(std::vector<float>(n, 0.25f), from, to);
      const double expected = static_cast<double>(n) * to / from;
      EXPECT_LE(std::abs(static_cast<double>(out.size()) - expected), 1.0)
          << from << " -> " << to << ", " << n << " in: " << out.size() << " out";
    }
  }
}

TEST(ResamplerTest, SineKeepsAmplitudeAndPhase) {
  const int from = 44100, to = 16000;
  const double hz = 1000, seconds = 1.0;
  std::vector<float> in(static_cast<size_t>(from * seconds));
  for (size_t i = 0; i < in.size(); ++i) in[i] = 0.5f * std::sin(2 * M_PI * hz * i / from);
  const std::vector<float> out = Resample(in, from, to);
  double max_error = 0;
  for (size_t i = to / 10; i < out.size() - to / 10; ++i) {  // away from the edges
    max_error = std::max(max_error, std::abs(out[i] - 0.5 * std::sin(2 * M_PI * hz * i / to)));
  }
  std::printf("1 kHz sine 44.1 -> 16 kHz: max error %.2e (%.1f dB below the amplitude)\n",
              max_error, 20 * std::log10(0.5 / max_error));
  EXPECT_LT(max_error, 1e-4);
}

// A client's Flush: Drain releases everything held, so the output so far follows the input so far,
// and the resampler goes on as for a new signal: the part after it is resampled exactly as if it
// were a stream of its own.
TEST(ResamplerTest, DrainReleasesTheHeldOutputAndStartsOver) {
  const std::vector<float> clip = Clip("clip_a");
  std::vector<float> first(clip.begin(), clip.begin() + 8000),
      second(clip.begin() + 8000, clip.end());
  auto resampler = Resampler::Create(16000, 8000);
  ASSERT_TRUE(resampler.ok());
  std::vector<float> out;
  ASSERT_TRUE((*resampler)->Process(first, &out).ok());
  const size_t before_drain = out.size();
  ASSERT_TRUE((*resampler)->Drain(&out).ok());
  std::printf("0.5 s at 16 kHz -> 8 kHz: %zu samples before Drain, %zu after\n", before_drain,
              out.size());
  EXPECT_LT(before_drain, 4000u);
  EXPECT_EQ(out, Resample(first, 16000, 8000));  // as if the input had ended
  std::vector<float> rest;
  ASSERT_TRUE((*resampler)->Process(second, &rest).ok());
  ASSERT_TRUE((*resampler)->Flush(&rest).ok());
  EXPECT_EQ(rest, Resample(second, 16000, 8000));
  EXPECT_EQ((*resampler)->Drain(&rest).code(), absl::StatusCode::kFailedPrecondition);
}

// Every Drain rounds the piece it drains; the rounding must not add up. After 1,000 pieces of one
// sample to 0.5 s, each drained, the output stays within half a sample of input * ratio (before:
// soxr's rounding of each piece added up, to milliseconds after 1,000 Flushes).
TEST(ResamplerTest, ManyDrainsKeepTheOutputOnTheInputsClock) {
  for (const auto& [from, to] : {std::make_pair(44100, 16000), std::make_pair(22050, 16000),
                                 std::make_pair(8000, 16000), std::make_pair(48000, 16000)}) {
    auto resampler = Resampler::Create(from, to);
    ASSERT_TRUE(resampler.ok()) << resampler.status();
    const std::vector<size_t> pieces = audio_test::RandomSplit(from * 300, 7, from / 2);
    std::vector<float> out;
    int64_t input_samples = 0;
    double worst_error = 0;
    for (size_t i = 0; i < pieces.size() && i < 1000; ++i) {
      const size_t n = pieces[i];
      ASSERT_TRUE((*resampler)->Process(std::vector<float>(n, 0.1f), &out).ok());
      ASSERT_TRUE((*resampler)->Drain(&out).ok());
      input_samples += static_cast<int64_t>(n);
      const double error =
          static_cast<double>(out.size()) - static_cast<double>(input_samples) * to / from;
      worst_error = std::max(worst_error, std::abs(error));
      ASSERT_LE(std::abs(error), 0.5) << from << " -> " << to << " after drain " << i;
    }
    std::printf("%d -> %d Hz: %.1f s in, worst drift %.2f samples\n", from, to,
                static_cast<double>(input_samples) / from, worst_error);
  }
}

// The held output is what a stream reports as received beyond the output: output so far plus held
// is the input's duration at the output rate after every call, whatever the split, and the held
// part is the filter delay (tens of ms) until Flush releases it.
TEST(ResamplerTest, OutputPlusHeldIsTheInputsDuration) {
  const std::vector<float> clip = Clip("clip_a");
  for (const int from : {8000, 22050, 44100, 48000}) {
    const std::vector<float> in = Resample(clip, 16000, from);
    auto resampler = Resampler::Create(from, 16000);
    ASSERT_TRUE(resampler.ok()) << resampler.status();
    std::vector<float> out;
    int64_t input_samples = 0;
    int64_t most_held = 0;
    for (size_t n : audio_test::RandomSplit(in.size(), 11, from / 10)) {
      ASSERT_TRUE(
          (*resampler)->Process(absl::MakeConstSpan(in.data() + input_samples, n), &out).ok());
      input_samples += static_cast<int64_t>(n);
      const int64_t held = (*resampler)->held_output_samples();
      most_held = std::max(most_held, held);
      ASSERT_EQ(static_cast<int64_t>(out.size()) + held, (input_samples * 16000 + from / 2) / from)
          << from << " Hz after " << input_samples << " samples";
    }
    std::printf("%d Hz -> 16 kHz: at most %.1f ms held\n", from, most_held / 16.0);
    EXPECT_GT(most_held, 0);
    ASSERT_TRUE((*resampler)->Flush(&out).ok());
    EXPECT_EQ((*resampler)->held_output_samples(), 0);
    EXPECT_EQ(static_cast<int64_t>(out.size()), (input_samples * 16000 + from / 2) / from);
  }
}

TEST(ResamplerTest, RejectsBadRatesAndProcessAfterFlush) {
  EXPECT_EQ(Resampler::Create(0, 16000).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Resampler::Create(16000, 1000000).status().code(), absl::StatusCode::kInvalidArgument);
  auto resampler = Resampler::Create(48000, 16000);
  ASSERT_TRUE(resampler.ok());
  std::vector<float> out;
  ASSERT_TRUE((*resampler)->Flush(&out).ok());
  EXPECT_TRUE(out.empty());
  EXPECT_EQ((*resampler)->Process(std::vector<float>(10), &out).code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace speechllm::streaming
