// StepRecorder: the benchmark's StepObserver. Keeps every engine step (start offset, duration,
// batch, tokens, whether it replayed a decode graph) so speechllm-bench can report step-time
// percentiles and write a per-step CSV (--step_log). OnStep runs on the engine loop thread; the
// main thread reads after the run.
#ifndef SPEECHLLM_TOOLS_BENCH_STEP_RECORDER_H_
#define SPEECHLLM_TOOLS_BENCH_STEP_RECORDER_H_

#include <fstream>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "engine/step_observer.h"
#include "tools/bench/bench_stats.h"

namespace speechllm::bench {

class StepRecorder : public engine::StepObserver {
 public:
  void OnStep(const engine::StepRecord& step) override {
    absl::MutexLock lock(&mutex_);
    if (recording_) steps_.push_back({absl::Now(), step});
  }

  // Forgets the steps so far and records from now on (after the warm-up).
  void Restart() {
    absl::MutexLock lock(&mutex_);
    steps_.clear();
    recording_ = true;
    origin_ = absl::Now();
  }

  // step_ms_p50/p95/max, the slowest step's batch, and the means of batch and tokens per step.
  void AddTo(JsonWriter& json) {
    absl::MutexLock lock(&mutex_);
    LatencyRecorder durations;
    const engine::StepRecord* slowest = nullptr;
    double tokens = 0, prefill = 0;
    int64_t graph_steps = 0, reruns = 0;
    for (const Entry& e : steps_) {
      durations.Add(e.step.duration);
      reruns += e.step.executions - 1;
      tokens += static_cast<double>(e.step.decoder_tokens);
      prefill += static_cast<double>(e.step.prefill_tokens);
      graph_steps += e.step.decode_graph ? 1 : 0;
      // A step run again in parts took several runner calls: its host and wait parts are not one
      // step's.
      if (e.step.executions == 1 && (slowest == nullptr || e.step.duration > slowest->duration)) {
        slowest = &e.step;
      }
    }
    const double n = steps_.empty() ? 1.0 : static_cast<double>(steps_.size());
    json.Add("step_ms_p50", durations.PercentileMs(0.50));
    json.Add("step_ms_p95", durations.PercentileMs(0.95));
    json.Add("step_ms_max", durations.PercentileMs(1.0));
    json.Add("step_decoder_tokens_mean", tokens / n);
    json.Add("step_prefill_tokens_mean", prefill / n);
    json.Add("decode_graph_steps", graph_steps);  // of steps_recorded
    json.Add("steps_recorded", static_cast<int64_t>(steps_.size()));
    // Runner calls of steps that failed and ran again in halves (engine/step_isolation.h). A run
    // in which a stream failed ends with that error and writes no JSON, so these are faults the
    // reruns recovered from (a transient device error, an allocation failure).
    json.Add("step_reruns", reruns);
    if (slowest != nullptr) {
      json.Add("slowest_step_sequences", slowest->sequences);
      json.Add("slowest_step_decoder_tokens", slowest->decoder_tokens);
      json.Add("slowest_step_encoder_items", slowest->encoder_items);
      // Its wait for the device: what the rest of step_ms_max was, the host held it up.
      json.Add("slowest_step_wait_ms", absl::ToDoubleMilliseconds(slowest->wait_time));
    }
  }

  // One line per step: offset from Restart, duration, sizes, the encoder / decoder split, the
  // device wait within the decoder's part, and the streams failed alone and runner calls of a
  // failed step.
  bool WriteCsv(const std::string& path) {
    absl::MutexLock lock(&mutex_);
    std::ofstream out(path);
    out << "start_ms,duration_ms,sequences,decoder_tokens,prefill_tokens,encoder_items,"
           "encoder_tokens,ok,graph,encoder_ms,decoder_ms,wait_ms,failed_sequences,executions\n";
    for (const Entry& e : steps_) {
      const absl::Time start = e.end - e.step.duration;
      out << absl::ToDoubleMilliseconds(start - origin_) << ','
          << absl::ToDoubleMilliseconds(e.step.duration) << ',' << e.step.sequences << ','
          << e.step.decoder_tokens << ',' << e.step.prefill_tokens << ',' << e.step.encoder_items
          << ',' << e.step.encoder_tokens << ',' << (e.step.ok ? 1 : 0) << ','
          << (e.step.decode_graph ? 1 : 0) << ',' << absl::ToDoubleMilliseconds(e.step.encoder_time)
          << ',' << absl::ToDoubleMilliseconds(e.step.decoder_time) << ','
          << absl::ToDoubleMilliseconds(e.step.wait_time) << ',' << e.step.failed_sequences << ','
          << e.step.executions << '\n';
    }
    return static_cast<bool>(out);
  }

 private:
  struct Entry {
    absl::Time end;
    engine::StepRecord step;
  };
  absl::Mutex mutex_;
  bool recording_ ABSL_GUARDED_BY(mutex_) = false;
  absl::Time origin_ ABSL_GUARDED_BY(mutex_);
  std::vector<Entry> steps_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace speechllm::bench

#endif  // SPEECHLLM_TOOLS_BENCH_STEP_RECORDER_H_
