// AudioFrontend: frames computed incrementally, in any chunking of the input, equal the offline
// LogMel::ExtractValidPrefix frames bit for bit; readiness rules; 30 s limit; segment restart.
#include "streaming/audio_frontend.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "engine/io/wav_reader.h"
#include "engine/model/log_mel.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace speechllm::streaming {
namespace {

using engine::FeatureConfig;
using engine::LogMel;
using engine::LogMelFeatures;
using speechllm::testing::GoldenDir;

constexpr int kMels = 128;

std::vector<float> Clip(const std::string& name) {
  auto samples = engine::ReadMonoWavFile(GoldenDir() + "/" + name + ".wav", 16000);
  EXPECT_TRUE(samples.ok()) << samples.status();
  return samples.ok() ? *samples : std::vector<float>();
}

// Reference values in the frontend's frame-major layout: ExtractValidPrefix is mel-major.
std::vector<float> Transpose(const LogMelFeatures& features) {
  std::vector<float> out(features.values.size());
  for (int64_t m = 0; m < features.num_mel_bins; ++m) {
    for (int64_t t = 0; t < features.num_frames; ++t) {
      out[t * features.num_mel_bins + m] = features.values[m * features.num_frames + t];
    }
  }
  return out;
}

// Unfloored log10 frames of the whole clip, frame-major, as the offline extractor computes them.
std::vector<float> OfflineLog10(const LogMel& log_mel, const std::vector<float>& clip,
                                int64_t num_frames) {
  std::vector<float> out(num_frames * kMels);
  log_mel.ComputeLog10Frames(clip, log_mel.config().max_samples, 0, num_frames, out.data());
  return out;
}

// Feeds `clip` in chunks drawn by `next_size`, checking readiness after every call, and compares
// every frame and the final features with the offline reference.
template <typename NextSize>
void StreamAndCompare(const LogMel& log_mel, const std::vector<float>& clip, NextSize next_size,
                      const std::string& label) {
  auto offline = log_mel.ExtractValidPrefix(clip);
  ASSERT_TRUE(offline.ok()) << offline.status();
  const std::vector<float> reference_log10 = OfflineLog10(log_mel, clip, offline->num_frames);

  AudioFrontend frontend(&log_mel);
  int64_t fed = 0, previous_ready = 0, calls = 0;
  while (fed < static_cast<int64_t>(clip.size())) {
    const int64_t n = std::min<int64_t>(next_size(), static_cast<int64_t>(clip.size()) - fed);
    ASSERT_TRUE(frontend.AcceptWaveform(absl::MakeConstSpan(clip).subspan(fed, n)).ok());
    fed += n;
    ++calls;
    const int64_t ready = frontend.NumFramesReady();
    ASSERT_GE(ready, previous_ready) << label;
    // Frame t is ready exactly when its whole window (t * 160 + 200 samples) has arrived.
    const int64_t expected_ready = fed < 200 ? 0 : std::min<int64_t>((fed - 200) / 160 + 1, 3000);
    ASSERT_EQ(ready, expected_ready) << label << " after " << fed << " samples";
    previous_ready = ready;
  }
  frontend.InputFinished();
  ASSERT_EQ(frontend.NumFramesReady(), offline->num_frames) << label;
  ASSERT_EQ(frontend.num_valid_frames(), offline->num_valid_frames) << label;
  ASSERT_EQ(frontend.num_final_frames(), offline->num_frames) << label;
  for (int64_t t = 0; t < offline->num_frames; ++t) {
    const float* frame = frontend.Log10Frame(t);
    for (int m = 0; m < kMels; ++m) {
      ASSERT_EQ(frame[m], reference_log10[t * kMels + m])
          << label << " frame " << t << " mel " << m;
    }
  }
  EXPECT_EQ(frontend.final_max_log10(), offline->max_log10) << label;
  EXPECT_EQ(frontend.FinalFeatures(), Transpose(*offline)) << label;
  std::printf("%s: %lld calls, %lld frames (%lld valid), max log10 %.4f\n", label.c_str(),
              static_cast<long long>(calls), static_cast<long long>(offline->num_frames),
              static_cast<long long>(offline->num_valid_frames), frontend.final_max_log10());
}

class AudioFrontendGoldenTest : public ::testing::Test {
 protected:
  LogMel log_mel_{FeatureConfig{}};
};

TEST_F(AudioFrontendGoldenTest, RandomChunkSizesGiveOfflineFramesExactly) {
  for (const char* name : {"clip_a", "clip_b"}) {
    const std::vector<float> clip = Clip(name);
    ASSERT_FALSE(clip.empty());
    for (unsigned seed : {1u, 2u, 3u}) {
      std::mt19937 rng(seed);
      std::uniform_int_distribution<int64_t> size(1, 5000);
      StreamAndCompare(
          log_mel_, clip, [&] { return size(rng); },
          std::string(name) + " seed " + std::to_string(seed));
    }
  }
}

TEST_F(AudioFrontendGoldenTest, FixedChunkSizesGiveOfflineFramesExactly) {
  for (const char* name : {"clip_a", "clip_b"}) {
    const std::vector<float> clip = Clip(name);
    for (int64_t size : {1, 160, 199, 320, 1600, 5120, 16000}) {
      StreamAndCompare(
          log_mel_, clip, [&] { return size; },
          std::string(name) + " chunk " + std::to_string(size));
    }
  }
}

TEST_F(AudioFrontendGoldenTest, RunningMaxOnlyGrowsAndChunkFramesUseIt) {
  const std::vector<float> clip = Clip("clip_b");
  AudioFrontend frontend(&log_mel_);
  float previous_max = -INFINITY;
  for (size_t fed = 0; fed < clip.size(); fed += 1600) {
    const size_t n = std::min<size_t>(1600, clip.size() - fed);
    ASSERT_TRUE(frontend.AcceptWaveform(absl::MakeConstSpan(clip).subspan(fed, n)).ok());
    ASSERT_GE(frontend.running_max_log10(), previous_max);
    previous_max = frontend.running_max_log10();
  }
  const int64_t ready = frontend.NumFramesReady();
  const std::vector<float> chunk = frontend.FloorAndScaleFrames(10, 5, previous_max);
  ASSERT_EQ(chunk.size(), 5u * kMels);
  std::vector<float> expected(frontend.Log10Frame(10), frontend.Log10Frame(10) + 5 * kMels);
  log_mel_.FloorAndScale(previous_max, expected.data(), static_cast<int64_t>(expected.size()));
  EXPECT_EQ(chunk, expected);
  EXPECT_GT(ready, 0);
}

TEST_F(AudioFrontendGoldenTest, SegmentRestartEqualsSegmentAlone) {
  const std::vector<float> clip = Clip("clip_b");
  const std::vector<float> second(clip.begin() + 40000, clip.begin() + 90000);
  AudioFrontend frontend(&log_mel_);
  ASSERT_TRUE(frontend.AcceptWaveform(absl::MakeConstSpan(clip).subspan(0, 40000)).ok());
  frontend.InputFinished();
  EXPECT_EQ(frontend.AcceptWaveform(second).code(), absl::StatusCode::kFailedPrecondition);
  frontend.Reset();
  EXPECT_EQ(frontend.num_samples(), 0);
  EXPECT_EQ(frontend.NumFramesReady(), 0);
  ASSERT_TRUE(frontend.AcceptWaveform(second).ok());
  frontend.InputFinished();
  auto offline = log_mel_.ExtractValidPrefix(second);
  ASSERT_TRUE(offline.ok());
  EXPECT_EQ(frontend.FinalFeatures(), Transpose(*offline));
  EXPECT_EQ(frontend.samples(), second);
}

TEST(AudioFrontendTest, FullThirtySecondSegment) {
  const LogMel log_mel{FeatureConfig{}};
  std::vector<float> tone(480000);
  for (size_t i = 0; i < tone.size(); ++i) {
    tone[i] = 0.1f * std::sin(0.05f * i) * (1.0f + 0.5f * std::sin(0.0003f * i));
  }
  AudioFrontend frontend(&log_mel);
  ASSERT_TRUE(frontend.AcceptWaveform(tone).ok());
  // Frame 2999's window reaches 40 samples past the end (reflected), so it waits for the end.
  EXPECT_EQ(frontend.NumFramesReady(), 2999);
  EXPECT_EQ(frontend.AcceptWaveform(std::vector<float>(1, 0.0f)).code(),
            absl::StatusCode::kFailedPrecondition);
  frontend.InputFinished();
  EXPECT_EQ(frontend.NumFramesReady(), 3000);
  EXPECT_EQ(frontend.num_valid_frames(), 3000);
  auto offline = log_mel.ExtractValidPrefix(tone);
  ASSERT_TRUE(offline.ok());
  ASSERT_EQ(offline->num_frames, 3000);
  EXPECT_EQ(frontend.FinalFeatures(), Transpose(*offline));
}

TEST(AudioFrontendTest, TooManySamplesAreRejectedWithoutAppending) {
  const LogMel log_mel{FeatureConfig{}};
  AudioFrontend frontend(&log_mel);
  ASSERT_TRUE(frontend.AcceptWaveform(std::vector<float>(479000, 0.01f)).ok());
  const absl::Status status = frontend.AcceptWaveform(std::vector<float>(1001, 0.01f));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("480000"), absl::string_view::npos) << status;
  EXPECT_EQ(frontend.num_samples(), 479000);
  EXPECT_TRUE(frontend.AcceptWaveform(std::vector<float>(1000, 0.01f)).ok());
}

TEST(AudioFrontendTest, ShortAndEmptySegments) {
  const LogMel log_mel{FeatureConfig{}};
  AudioFrontend frontend(&log_mel);
  frontend.InputFinished();
  EXPECT_EQ(frontend.NumFramesReady(), 0);
  EXPECT_TRUE(frontend.FinalFeatures().empty());

  for (int64_t n : {1, 100, 160, 161, 199, 200, 321}) {
    frontend.Reset();
    std::vector<float> samples(n);
    for (int64_t i = 0; i < n; ++i) samples[i] = 0.3f * std::sin(0.7f * i);
    ASSERT_TRUE(frontend.AcceptWaveform(samples).ok());
    EXPECT_EQ(frontend.NumFramesReady(), n >= 200 ? 1 : 0) << n;
    EXPECT_TRUE(frontend.FinalFeatures().empty()) << "before InputFinished, " << n;
    frontend.InputFinished();
    auto offline = log_mel.ExtractValidPrefix(samples);
    ASSERT_TRUE(offline.ok());
    EXPECT_EQ(frontend.NumFramesReady(), offline->num_frames) << n;
    EXPECT_EQ(frontend.FinalFeatures(), Transpose(*offline)) << n;
  }
}

}  // namespace
}  // namespace speechllm::streaming
