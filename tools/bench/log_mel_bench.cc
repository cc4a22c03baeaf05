// Google Benchmark of the log-mel front end on one core: 30 s of audio (3000 frames, the encoder's
// whole window) and a 1 s chunk. Reports the real-time factor as a counter ("x_real_time" = audio
// seconds per CPU second). Run: build/tools/bench/log_mel_bench
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "engine/model/log_mel.h"

namespace speechllm::engine {
namespace {

std::vector<float> NoisyChirp(int num_samples) {
  std::mt19937 rng(1);
  std::normal_distribution<float> noise(0.0f, 0.05f);
  std::vector<float> samples(num_samples);
  double phase = 0;
  for (int i = 0; i < num_samples; ++i) {
    phase += 2 * M_PI * (220.0 + 180.0 * std::sin(2 * M_PI * 0.7 * i / 16000.0)) / 16000.0;
    samples[i] = 0.3f * static_cast<float>(std::sin(phase)) + noise(rng);
  }
  return samples;
}

void BM_LogMelPadded30s(benchmark::State& state) {
  const FeatureConfig config;
  const LogMel log_mel(config);
  const std::vector<float> samples = NoisyChirp(config.max_samples);
  for (auto _ : state) benchmark::DoNotOptimize(log_mel.ExtractPadded(samples));
  state.counters["x_real_time"] =
      benchmark::Counter(30.0 * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LogMelPadded30s)->Unit(benchmark::kMillisecond);

void BM_LogMelFrames1s(benchmark::State& state) {
  const FeatureConfig config;
  const LogMel log_mel(config);
  const std::vector<float> samples = NoisyChirp(config.sample_rate_hz + config.n_fft);
  std::vector<float> out(100 * config.num_mel_bins);
  for (auto _ : state) {
    log_mel.ComputeLog10Frames(samples, config.max_samples, 0, 100, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["x_real_time"] =
      benchmark::Counter(1.0 * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LogMelFrames1s)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace speechllm::engine

BENCHMARK_MAIN();
