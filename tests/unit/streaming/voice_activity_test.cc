// VoiceActivity on synthetic signals (silence, steady noise, tone bursts over noise, level
// changes), on the golden clips (quiet lead-in, then a loud chirp), determinism and config checks.
#include "streaming/voice_activity.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "engine/io/wav_reader.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace speechllm::streaming {
namespace {

using ::testing::HasSubstr;

constexpr int kRate = 16000;
constexpr int kFrame = 160;

// Appends `ms` of white Gaussian noise at `dbfs` (10 log10 of the mean square).
void AddNoise(std::vector<float>* signal, int ms, double dbfs, std::mt19937* rng) {
  std::normal_distribution<float> normal(0.0f, static_cast<float>(std::pow(10.0, dbfs / 20.0)));
  for (int i = 0; i < ms * kRate / 1000; ++i) signal->push_back(normal(*rng));
}

// Appends `ms` of a 440 Hz tone with a 4 Hz syllable-like envelope at peak `dbfs`, over noise.
void AddBurst(std::vector<float>* signal, int ms, double dbfs, double noise_dbfs,
              std::mt19937* rng) {
  std::normal_distribution<float> normal(0.0f,
                                         static_cast<float>(std::pow(10.0, noise_dbfs / 20.0)));
  const double amplitude = std::sqrt(2.0) * std::pow(10.0, dbfs / 20.0);
  const size_t start = signal->size();
  for (int i = 0; i < ms * kRate / 1000; ++i) {
    const double t = static_cast<double>(start + i) / kRate;
    const double envelope = 0.7 + 0.3 * std::sin(2 * M_PI * 4 * t);
    signal->push_back(static_cast<float>(amplitude * envelope * std::sin(2 * M_PI * 440 * t)) +
                      normal(*rng));
  }
}

std::vector<VadFrame> Classify(const std::vector<float>& signal,
                               const VoiceActivityConfig& config = VoiceActivityConfig()) {
  VoiceActivity vad(config);
  std::vector<VadFrame> frames;
  vad.AcceptWaveform(signal, &frames);
  return frames;
}

// Share of speech frames in [first_ms, end_ms).
double SpeechShare(const std::vector<VadFrame>& frames, int first_ms, int end_ms) {
  int speech = 0, total = 0;
  for (int f = first_ms / 10; f < end_ms / 10 && f < static_cast<int>(frames.size()); ++f) {
    speech += frames[f].is_speech;
    ++total;
  }
  return total > 0 ? static_cast<double>(speech) / total : -1;
}

TEST(VoiceActivityTest, DigitalSilenceIsNeverSpeech) {
  const std::vector<VadFrame> frames = Classify(std::vector<float>(2 * kRate, 0.0f));
  ASSERT_EQ(frames.size(), 200u);
  for (const VadFrame& frame : frames) {
    EXPECT_FALSE(frame.is_speech);
    EXPECT_FLOAT_EQ(frame.energy_dbfs, -100.0f);
  }
}

TEST(VoiceActivityTest, SteadyLowNoiseIsNotSpeech) {
  for (double dbfs : {-80.0, -60.0, -45.0}) {
    std::mt19937 rng(1);
    std::vector<float> signal;
    AddNoise(&signal, 3000, dbfs, &rng);
    const std::vector<VadFrame> frames = Classify(signal);
    std::printf("noise %.0f dBFS: speech share %.3f, floor at end %.1f dBFS\n", dbfs,
                SpeechShare(frames, 0, 3000), frames.back().noise_floor_dbfs);
    EXPECT_EQ(SpeechShare(frames, 0, 3000), 0.0) << dbfs;
  }
}

TEST(VoiceActivityTest, ToneBurstsOverQuietNoise) {
  std::mt19937 rng(2);
  std::vector<float> signal;
  AddNoise(&signal, 1000, -60, &rng);
  for (int i = 0; i < 3; ++i) {
    AddBurst(&signal, 400, -20, -60, &rng);
    AddNoise(&signal, 600, -60, &rng);
  }
  const std::vector<VadFrame> frames = Classify(signal);
  for (int i = 0; i < 3; ++i) {
    const int start_ms = 1000 + 1000 * i;
    const double in_burst = SpeechShare(frames, start_ms, start_ms + 400);
    const double after = SpeechShare(frames, start_ms + 400 + 150, start_ms + 1000);
    std::printf("burst %d: speech share %.3f in burst, %.3f in the gap\n", i, in_burst, after);
    EXPECT_EQ(in_burst, 1.0);
    EXPECT_EQ(after, 0.0);
    // Onset on the burst's first frame; the hangover ends within 100 ms of its last one.
    EXPECT_TRUE(frames[start_ms / 10].is_speech);
    EXPECT_FALSE(frames[start_ms / 10 - 1].is_speech);
    EXPECT_TRUE(frames[(start_ms + 400) / 10 + 9].is_speech);
    EXPECT_FALSE(frames[(start_ms + 400) / 10 + 10].is_speech);
  }
  EXPECT_EQ(SpeechShare(frames, 0, 1000), 0.0);
}

TEST(VoiceActivityTest, SpeechLikeBurstsOverLouderNoise) {
  std::mt19937 rng(3);
  std::vector<float> signal;
  AddNoise(&signal, 2000, -40, &rng);  // above min_speech_dbfs: only the floor rejects it
  for (int i = 0; i < 4; ++i) {
    AddBurst(&signal, 300, -15, -40, &rng);
    AddNoise(&signal, 300, -40, &rng);
  }
  const std::vector<VadFrame> frames = Classify(signal);
  // The floor starts at initial_noise_floor_dbfs (-50) and climbs to the noise at 3 dB/s.
  int last_speech_ms = -1;
  for (int f = 0; f < 200; ++f) {
    if (frames[f].is_speech) last_speech_ms = f * 10;
  }
  const double lead_in = SpeechShare(frames, 1000, 2000);
  std::printf("noise -40 dBFS from the start: last speech frame at %d ms, share %.3f in 1-2 s\n",
              last_speech_ms, lead_in);
  EXPECT_EQ(lead_in, 0.0);
  for (int i = 0; i < 4; ++i) {
    const int start_ms = 2000 + 600 * i;
    EXPECT_EQ(SpeechShare(frames, start_ms, start_ms + 300), 1.0) << i;
    EXPECT_EQ(SpeechShare(frames, start_ms + 450, start_ms + 600), 0.0) << i;
  }
}

TEST(VoiceActivityTest, LevelChangesAreAbsorbed) {
  std::mt19937 rng(4);
  std::vector<float> signal;
  AddNoise(&signal, 1000, -70, &rng);
  AddNoise(&signal, 12000, -30, &rng);  // a fan switches on: speech at first, then absorbed
  AddNoise(&signal, 1000, -65, &rng);   // and off again: the floor falls at once
  AddBurst(&signal, 300, -35, -65, &rng);
  AddNoise(&signal, 500, -65, &rng);
  const std::vector<VadFrame> frames = Classify(signal);
  int last_speech_ms = -1;
  for (int f = 100; f < 1300; ++f) {
    if (frames[f].is_speech) last_speech_ms = f * 10;
  }
  std::printf("step -70 -> -30 dBFS: speech until %d ms after the step\n", last_speech_ms - 1000);
  EXPECT_GT(last_speech_ms, 1000);          // it does look like speech at first
  EXPECT_LT(last_speech_ms - 1000, 10000);  // 21 dB at 3 dB/s: about 7 s, plus hangover
  EXPECT_EQ(SpeechShare(frames, 11500, 13000), 0.0);
  EXPECT_EQ(SpeechShare(frames, 13000, 14000), 0.0);  // step down: never speech
  EXPECT_LT(frames[1320].noise_floor_dbfs, -60.0f);
  EXPECT_EQ(SpeechShare(frames, 14000, 14300), 1.0);  // a quiet burst after the step down
}

TEST(VoiceActivityTest, GoldenClipsQuietLeadInThenChirp) {
  for (const char* name : {"clip_a", "clip_b"}) {
    auto clip =
        engine::ReadMonoWavFile(speechllm::testing::GoldenDir() + "/" + name + ".wav", kRate);
    ASSERT_TRUE(clip.ok()) << clip.status();
    const std::vector<VadFrame> frames = Classify(*clip);
    const int total_ms = static_cast<int>(frames.size()) * 10;
    const int quiet_end_ms = total_ms / 10;
    const double quiet = SpeechShare(frames, 0, quiet_end_ms - 20);
    const double chirp = SpeechShare(frames, quiet_end_ms + 20, total_ms);
    std::printf(
        "%s: speech share %.3f in the quiet 10%%, %.3f in the chirp; energies %.1f / %.1f\n", name,
        quiet, chirp, frames[0].energy_dbfs, frames.back().energy_dbfs);
    EXPECT_EQ(quiet, 0.0) << name;
    EXPECT_EQ(chirp, 1.0) << name;
  }
}

TEST(VoiceActivityTest, ChunkingDoesNotChangeDecisions) {
  std::mt19937 rng(5);
  std::vector<float> signal;
  AddNoise(&signal, 500, -60, &rng);
  AddBurst(&signal, 500, -20, -60, &rng);
  AddNoise(&signal, 500, -60, &rng);
  const std::vector<VadFrame> whole = Classify(signal);
  VoiceActivity vad{VoiceActivityConfig()};
  std::vector<VadFrame> pieces;
  std::uniform_int_distribution<size_t> size(1, 700);
  for (size_t fed = 0; fed < signal.size();) {
    const size_t n = std::min(size(rng), signal.size() - fed);
    vad.AcceptWaveform(absl::MakeConstSpan(signal).subspan(fed, n), &pieces);
    fed += n;
  }
  ASSERT_EQ(pieces.size(), whole.size());
  for (size_t f = 0; f < whole.size(); ++f) {
    ASSERT_EQ(pieces[f].is_speech, whole[f].is_speech) << f;
    ASSERT_EQ(pieces[f].energy_dbfs, whole[f].energy_dbfs) << f;
    ASSERT_EQ(pieces[f].noise_floor_dbfs, whole[f].noise_floor_dbfs) << f;
  }
  EXPECT_EQ(vad.num_frames(), static_cast<int64_t>(whole.size()));
  vad.Reset();
  EXPECT_EQ(vad.num_frames(), 0);
  std::vector<VadFrame> again;
  vad.AcceptWaveform(signal, &again);
  EXPECT_EQ(again.size(), whole.size());
  EXPECT_EQ(again.back().noise_floor_dbfs, whole.back().noise_floor_dbfs);
}

TEST(VoiceActivityConfigTest, ValidateNamesFieldAndRange) {
  EXPECT_TRUE(VoiceActivityConfig().Validate().ok());
  auto expect_invalid = [](VoiceActivityConfig config, const std::string& text) {
    const absl::Status status = config.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(status.message()), HasSubstr(text)) << status;
  };
  VoiceActivityConfig config;
  config.threshold_db = 0;
  expect_invalid(config, "threshold_db must be in (0, 40]");
  config = VoiceActivityConfig();
  config.min_speech_dbfs = 3;
  expect_invalid(config, "min_speech_dbfs must be in [-100, 0]");
  config = VoiceActivityConfig();
  config.noise_floor_rise_db_per_s = 0;
  expect_invalid(config, "noise_floor_rise_db_per_s");
  config = VoiceActivityConfig();
  config.hangover_ms = -10;
  expect_invalid(config, "hangover_ms must be in [0, 2000]");
  config = VoiceActivityConfig();
  config.noise_floor_fall_ms = 20000;
  expect_invalid(config, "noise_floor_fall_ms");
  EXPECT_THAT(VoiceActivityConfig().ToString(), HasSubstr("threshold_db=9"));
}

}  // namespace
}  // namespace speechllm::streaming
