// LogMel against the Hugging Face golden features (MODEL.md 10): mel bank, features of both clips,
// valid-prefix extraction and frame-by-frame computation.
#include "engine/model/log_mel.h"

#include <cstdio>
#include <memory>
#include <random>
#include <string>

#include "engine/io/wav_reader.h"
#include "engine/model/safetensors.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace speechllm::engine {
namespace {

using speechllm::testing::CompareVectors;
using speechllm::testing::GoldenDir;

class LogMelGoldenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto golden = SafetensorsFile::Open(GoldenDir() + "/golden.safetensors");
    ASSERT_TRUE(golden.ok()) << golden.status();
    golden_ = std::move(golden).value();
  }
  std::vector<float> Golden(const std::string& name) {
    auto view = golden_->Get(name);
    EXPECT_TRUE(view.ok()) << view.status();
    return view.ok() ? view->ToFloat32() : std::vector<float>();
  }
  std::vector<float> Clip(const std::string& name) {
    auto samples = ReadMonoWavFile(GoldenDir() + "/" + name + ".wav", 16000);
    EXPECT_TRUE(samples.ok()) << samples.status();
    return samples.ok() ? *samples : std::vector<float>();
  }

  std::unique_ptr<SafetensorsFile> golden_;
  LogMel log_mel_{FeatureConfig{}};
};

TEST_F(LogMelGoldenTest, MelFilterBankMatchesTransformers) {
  const auto& dense = log_mel_.filter_bank().dense();
  std::vector<float> ours(dense.begin(), dense.end());
  const auto stats = CompareVectors(ours, Golden("mel_filters"));
  std::printf("mel_filters: max |err| %.3g, relative %.3g\n", stats.max_abs, stats.relative_l2);
  EXPECT_LE(stats.relative_l2, 1e-6);
}

TEST_F(LogMelGoldenTest, PaddedFeaturesMatchGolden) {
  const std::vector<float> all = Golden("input_features");
  const auto mask = golden_->Get("feature_attention_mask")->ToFloat32();
  const int64_t per_clip = 128 * 3000;
  ASSERT_EQ(all.size(), static_cast<size_t>(2 * per_clip));
  const char* names[] = {"clip_a", "clip_b"};
  for (int b = 0; b < 2; ++b) {
    const LogMelFeatures features = log_mel_.ExtractPadded(Clip(names[b]));
    ASSERT_EQ(features.num_frames, 3000);
    std::vector<float> ref(all.begin() + b * per_clip, all.begin() + (b + 1) * per_clip);
    const auto stats = CompareVectors(features.values, ref);
    std::printf("input_features %s: max |err| %.3g, mean |err| %.3g\n", names[b], stats.max_abs,
                stats.mean_abs);
    EXPECT_LE(stats.max_abs, 1e-3);
    EXPECT_LE(stats.mean_abs, 1e-5);
    double valid = 0;
    for (int t = 0; t < 3000; ++t) valid += mask[b * 3000 + t];
    EXPECT_EQ(features.num_valid_frames, static_cast<int64_t>(valid));
  }
}

TEST_F(LogMelGoldenTest, ValidPrefixEqualsPaddedColumns) {
  const std::vector<float> clip = Clip("clip_a");
  const LogMelFeatures padded = log_mel_.ExtractPadded(clip);
  auto prefix = log_mel_.ExtractValidPrefix(clip);
  ASSERT_TRUE(prefix.ok()) << prefix.status();
  EXPECT_EQ(prefix->num_frames, 337 + 2);
  EXPECT_EQ(prefix->max_log10, padded.max_log10);
  for (int m = 0; m < 128; ++m) {
    for (int64_t t = 0; t < prefix->num_frames; ++t) {
      ASSERT_EQ(prefix->values[m * prefix->num_frames + t], padded.values[m * 3000 + t])
          << m << "," << t;
    }
  }
}

TEST_F(LogMelGoldenTest, FramesComputedPiecewiseEqualWholeClip) {
  const std::vector<float> clip = Clip("clip_b");
  const int64_t frames = 100;
  std::vector<float> whole(frames * 128), piece(frames * 128);
  log_mel_.ComputeLog10Frames(clip, 480000, 0, frames, whole.data());
  std::mt19937 rng(7);
  for (int64_t first = 0; first < frames;) {
    const int64_t count = std::min<int64_t>(frames - first, 1 + rng() % 13);
    log_mel_.ComputeLog10Frames(clip, 480000, first, count, piece.data() + first * 128);
    first += count;
  }
  EXPECT_EQ(whole, piece);
}

TEST(LogMelTest, EmptyClipIsAnError) {
  LogMel log_mel{FeatureConfig{}};
  EXPECT_EQ(log_mel.ExtractValidPrefix({}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(LogMelTest, SilenceGivesTheFloorEverywhere) {
  LogMel log_mel{FeatureConfig{}};
  const std::vector<float> silence(16000, 0.0f);
  const LogMelFeatures features = log_mel.ExtractPadded(silence);
  EXPECT_FLOAT_EQ(features.max_log10, -10.0f);
  for (float v : features.values) ASSERT_FLOAT_EQ(v, (-10.0f + 4.0f) / 4.0f);
}

TEST(LogMelTest, LongClipIsTruncatedTo3000Frames) {
  LogMel log_mel{FeatureConfig{}};
  std::vector<float> tone(500000);
  for (size_t i = 0; i < tone.size(); ++i) tone[i] = 0.1f * std::sin(0.05f * i);
  auto features = log_mel.ExtractValidPrefix(tone);
  ASSERT_TRUE(features.ok());
  EXPECT_EQ(features->num_frames, 3000);
  EXPECT_EQ(features->num_valid_frames, 3000);
}

}  // namespace
}  // namespace speechllm::engine
