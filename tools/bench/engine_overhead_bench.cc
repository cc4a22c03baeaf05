// Google Benchmark of the engine's host cost per step (issue 8: at 150 streams a GPU decode step
// takes milliseconds, so the scheduler's planning and bookkeeping must take far less). N sequences
// each finalize one segment of 375 precomputed audio rows (30 s of audio: no encoder) and decode
// its hypothesis (256 tokens) on the FakeModelRunner, which does no model work; the counters split
// each step's wall time into the runner's share (FakeModelRunner::Execute, its toy-model
// bookkeeping) and the engine's own (inbox, Schedule, Update, outputs). Run:
// build/tools/bench/engine_overhead_bench
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "engine/fake_model_runner.h"

namespace speechllm::engine {
namespace {

constexpr int64_t kAudioRows = 375;

void BM_EngineStepHostCost(benchmark::State& state) {
  const int num_sequences = static_cast<int>(state.range(0));
  double steps = 0, wall_us = 0, runner_us = 0, batch = 0;
  for (auto _ : state) {
    state.PauseTiming();
    // Every start and end is posted while the runner holds the first step, so each repetition
    // schedules the same steps whatever the threads' timing.
    absl::Notification go;
    FakeModelRunner::Options options;
    options.num_kv_blocks = 100 * num_sequences + 64;  // admission reserves a worst-case segment
    options.hold_steps_until = &go;
    EngineConfig config;
    config.max_num_sequences = num_sequences;
    Engine engine(config, std::make_unique<FakeModelRunner>(options));
    const int64_t hidden = engine.model_config().text.hidden_size;
    const int64_t bos = engine.model_config().audio_bos_token_id;
    const int64_t eos = engine.model_config().audio_eos_token_id;
    std::vector<SequenceId> ids;
    for (int i = 0; i < num_sequences; ++i) {
      ids.push_back(*engine.AddSequence(SequenceConfig{}));
      SegmentStart start{0, {1, 2, 3, bos}, {eos, 10, 11, 12}};
      (void)engine.StartSegment(ids.back(), start);
      auto end = std::make_unique<SegmentEnd>();
      end->num_audio_embeddings = kAudioRows;
      end->audio_embeddings.assign(kAudioRows * hidden, 0.0f);
      (void)engine.EndSegment(ids.back(), std::move(end));
    }
    const EngineStats before = engine.stats();
    state.ResumeTiming();
    const absl::Time start = absl::Now();
    go.Notify();
    for (int finals = 0; finals < num_sequences;) {
      for (const SequenceOutput& output : engine.PopOutputs(absl::Seconds(1))) {
        finals += output.is_final;
      }
    }
    const absl::Duration wall = absl::Now() - start;
    state.PauseTiming();
    const EngineStats after = engine.stats();
    steps += static_cast<double>(after.steps - before.steps);
    batch += static_cast<double>(after.step_sequences - before.step_sequences);
    wall_us += absl::ToDoubleMicroseconds(wall);
    runner_us += absl::ToDoubleMicroseconds(after.busy_time - before.busy_time);
    for (SequenceId id : ids) engine.Release(id);
    engine.Stop();
    state.ResumeTiming();
  }
  state.counters["steps"] = steps / state.iterations();
  state.counters["mean_batch"] = batch / steps;
  state.counters["us_per_step"] = wall_us / steps;
  state.counters["runner_us_per_step"] = runner_us / steps;
  state.counters["engine_us_per_step"] = (wall_us - runner_us) / steps;
}
BENCHMARK(BM_EngineStepHostCost)
    ->Arg(1)
    ->Arg(16)
    ->Arg(64)
    ->Arg(150)
    ->Arg(256)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace speechllm::engine

BENCHMARK_MAIN();
