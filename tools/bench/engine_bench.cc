// speechllm-bench: the engine-level benchmark (no gRPC, so it builds wherever libtorch does).
// Replays WAV clips as N concurrent streams through the Engine, paced in real time (chunks arrive
// as a microphone would deliver them, stream starts staggered) or closed-loop as fast as possible
// (each stream sends its next chunk as soon as its previous update came back), and prints one JSON
// summary. In real time a stream's next utterance starts --gap_ms after its last one's audio, on
// the audio clock, whether or not that one's final has come (until 2026-11-29 it waited for the
// final, so a slow engine was offered less load). With --duration_s, streams speak on (clip after
// clip) and the latencies of the window in which all of them are active are also reported apart
// (the *_steady fields).
//   speechllm-bench --model models/qwen2-audio-tiny --streams 16 --chunk_ms 1000
//   speechllm-bench --random_weights --preset 7b --device cuda --streams 64
//   speechllm-bench --model models/qwen2-audio-tiny --streams 16 --stagger_ms 8000 --duration_s 12
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/allocator_tuning.h"
#include "engine/engine.h"
#include "engine/io/program_flags.h"
#include "engine/model/log_mel.h"
#include "engine/status_macros.h"
#include "engine/torch_model_runner.h"
#include "tools/bench/bench_clip.h"
#include "tools/bench/bench_stats.h"
#include "tools/bench/bench_warmup.h"
#include "tools/bench/chunk_latency.h"
#include "tools/bench/engine_bench_flags.h"
#include "tools/bench/simulated_device.h"
#include "tools/bench/step_recorder.h"

namespace speechllm::bench {
namespace {

using engine::SequenceId;

int Fail(const std::string& message) {
  std::cerr << "speechllm-bench: " << message << "\n";
  return 1;
}

std::vector<int64_t> ParseIds(const std::string& text) {
  std::vector<int64_t> ids;
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int64_t id = 0;
    if (absl::SimpleAtoi(piece, &id)) ids.push_back(id);
  }
  return ids;
}

struct Stream {
  SequenceId id = 0;
  const Clip* clip = nullptr;
  absl::Time start;  // of the current utterance
  int64_t segment = 0;
  int64_t finals_pending = 0;  // utterances whose end was sent and whose final has not come
  bool last_started = false;   // no utterance will follow the current one
  int64_t next_position = 0;
  bool end_sent = false, waiting = false, done = false;
  bool first_partial_pending = true;  // no partial of the current utterance has arrived yet
  double audio_done_seconds = 0;
  absl::Duration compute;
};

int Run() {
  const bool realtime = absl::GetFlag(FLAGS_mode) == "realtime";
  if (!realtime && absl::GetFlag(FLAGS_mode) != "fast") return Fail("--mode is realtime or fast");
  if (absl::GetFlag(FLAGS_streams) < 1) return Fail("--streams must be at least 1");
  if (absl::GetFlag(FLAGS_repeat) < 1) return Fail("--repeat must be at least 1");
  if (absl::GetFlag(FLAGS_chunk_ms) <= 0 || absl::GetFlag(FLAGS_chunk_ms) % 40 != 0)
    return Fail("--chunk_ms must be a positive multiple of 40 (one audio token)");
  if (absl::GetFlag(FLAGS_gap_ms) < 0 || absl::GetFlag(FLAGS_gap_ms) > 600000)
    return Fail("--gap_ms must be in [0, 600000]");
  if (absl::GetFlag(FLAGS_stagger_ms) < 0 || absl::GetFlag(FLAGS_duration_s) < 0 ||
      absl::GetFlag(FLAGS_warmup_streams) < 0)
    return Fail("--stagger_ms, --duration_s and --warmup_streams must not be negative");
  if (absl::GetFlag(FLAGS_max_new_tokens) < 1 || absl::GetFlag(FLAGS_kv_cache_mb) < 1)
    return Fail("--max_new_tokens and --kv_cache_mb must be at least 1");
  engine::TorchRunnerConfig runner_config;
  runner_config.runtime.device = absl::GetFlag(FLAGS_device);
  runner_config.runtime.dtype = absl::GetFlag(FLAGS_dtype);
  runner_config.runtime.num_threads = absl::GetFlag(FLAGS_threads);
  runner_config.kv_cache_bytes = static_cast<int64_t>(absl::GetFlag(FLAGS_kv_cache_mb)) << 20;
  runner_config.cuda_graph_max_batch = std::max(64, absl::GetFlag(FLAGS_streams));
  runner_config.sync_stage_times = absl::GetFlag(FLAGS_sync_stages);
  absl::StatusOr<std::unique_ptr<engine::ModelRunner>> runner;
  std::string graphs_summary;
  const std::string simulated_cost = absl::GetFlag(FLAGS_simulate_step_cost);
  if (!simulated_cost.empty()) {
    runner = MakeSimulatedDevice(simulated_cost);
  } else if (absl::GetFlag(FLAGS_random_weights)) {
    auto config = engine::ModelConfig::Preset(absl::GetFlag(FLAGS_preset));
    if (!config.ok()) return Fail(config.status().ToString());
    runner = engine::TorchModelRunner::CreateRandom(*config, runner_config, /*seed=*/1234);
  } else {
    if (absl::GetFlag(FLAGS_model).empty())
      return Fail("give --model DIR or --random_weights --preset NAME");
    runner = engine::TorchModelRunner::Create(absl::GetFlag(FLAGS_model), runner_config);
  }
  if (!runner.ok()) return Fail(runner.status().ToString());
  const engine::ModelConfig model = (*runner)->config();
  if (const auto* torch_runner = dynamic_cast<const engine::TorchModelRunner*>(runner->get())) {
    graphs_summary = torch_runner->graphs_summary();
  }
  const int64_t mels = model.audio.num_mel_bins;
  const engine::LogMel log_mel(model.features);

  std::vector<std::string> paths = absl::StrSplit(absl::GetFlag(FLAGS_wav), ',', absl::SkipEmpty());
  if (paths.empty()) {
    paths = {std::string(SPEECHLLM_SOURCE_DIR) + "/tests/data/qwen2-audio-tiny-golden/clip_a.wav",
             std::string(SPEECHLLM_SOURCE_DIR) + "/tests/data/qwen2-audio-tiny-golden/clip_b.wav"};
  }
  std::vector<Clip> clips;
  for (const std::string& path : paths) {
    absl::StatusOr<Clip> clip = LoadClip(path, log_mel);
    if (!clip.ok()) return Fail(clip.status().ToString());
    clips.push_back(std::move(clip).value());
  }

  std::vector<int64_t> prefix = ParseIds(absl::GetFlag(FLAGS_prefix_ids));
  std::vector<int64_t> suffix = ParseIds(absl::GetFlag(FLAGS_suffix_ids));
  if (prefix.empty()) prefix = {1, 2, 3, model.audio_bos_token_id};
  if (suffix.empty()) suffix = {model.audio_eos_token_id, 10, 11, 12};

  engine::EngineConfig engine_config;
  engine_config.max_num_sequences = std::max(64, absl::GetFlag(FLAGS_streams));
  engine_config.max_step_tokens = absl::GetFlag(FLAGS_max_step_tokens);
  engine_config.max_step_encoder_positions = absl::GetFlag(FLAGS_max_step_encoder_positions);
  engine_config.max_prefix_tokens = static_cast<int64_t>(prefix.size());
  engine_config.max_suffix_tokens = static_cast<int64_t>(suffix.size());
  engine_config.max_audio_tokens_per_segment = absl::GetFlag(FLAGS_max_audio_tokens);
  StepRecorder step_recorder;  // declared first: outlives the engine loop that calls it
  engine::Engine engine(engine_config, std::move(runner).value());

  const int chunk_ms = absl::GetFlag(FLAGS_chunk_ms);
  const int64_t chunk_positions = chunk_ms / 20;  // 20 ms per conv position
  const int num_streams = absl::GetFlag(FLAGS_streams);
  const int repeat = absl::GetFlag(FLAGS_repeat);
  const absl::Duration stagger = realtime ? absl::Milliseconds(absl::GetFlag(FLAGS_stagger_ms) > 0
                                                                   ? absl::GetFlag(FLAGS_stagger_ms)
                                                                   : chunk_ms)
                                          : absl::ZeroDuration();
  const absl::Duration duration = absl::Seconds(absl::GetFlag(FLAGS_duration_s));
  engine::SequenceConfig sequence_config;
  sequence_config.final_mode = absl::GetFlag(FLAGS_final_mode) == "fast"
                                   ? engine::FinalMode::kFast
                                   : engine::FinalMode::kExact;
  sequence_config.partial_updates = absl::GetFlag(FLAGS_partials);
  sequence_config.max_new_tokens_per_segment = absl::GetFlag(FLAGS_max_new_tokens);
  sequence_config.max_new_tokens_per_update = absl::GetFlag(FLAGS_max_new_tokens_per_update);

  engine.SetStepObserver(&step_recorder);
  const int warmup_streams = std::min(absl::GetFlag(FLAGS_warmup_streams), num_streams);
  if (warmup_streams > 0) {
    absl::Status warm = WarmUp(engine, clips, warmup_streams, chunk_positions, mels,
                               sequence_config, prefix, suffix);
    if (!warm.ok()) return Fail(warm.ToString());
  }
  const engine::EngineStats before = engine.stats();
  step_recorder.Restart();

  std::vector<Stream> streams(num_streams);
  std::map<SequenceId, Stream*> by_id;
  const absl::Time t0 = absl::Now();
  for (int i = 0; i < num_streams; ++i) {
    auto id = engine.AddSequence(sequence_config);
    if (!id.ok()) return Fail(id.status().ToString());
    streams[i].id = *id;
    streams[i].clip = &clips[i % clips.size()];
    // Real-time streams start staggered (over one chunk by default), as independent microphones
    // would.
    streams[i].start = t0 + stagger * i / num_streams;
    by_id[*id] = &streams[i];
    if (absl::Status s = engine.StartSegment(*id, {0, prefix, suffix}); !s.ok())
      return Fail(s.ToString());
  }

  // first_partial_latency: each utterance's first partial only (PERFORMANCE.md's first-partial
  // target), from its chunk's arrival, whether or not that chunk holds a word.
  LatencyRecorder first_partial_latency;
  // Each update's wait for the engine step that began it (ResultTiming.queue_wait).
  LatencyRecorder partial_queue_wait, final_queue_wait;
  // chunk_latency: every chunk, until the first update that reflects it (ChunkLatency).
  WindowedLatency partial_latency, final_latency, chunk_latency;
  ChunkLatency chunk_tracker;
  if (duration > absl::ZeroDuration()) {  // every stream has started and none has stopped
    partial_latency.begin = final_latency.begin = chunk_latency.begin = t0 + stagger;
    partial_latency.end = final_latency.end = chunk_latency.end = t0 + stagger + duration;
  }
  // Real time: whether the utterance `s` has started is its last (the next would start after the
  // measured window, or past --repeat).
  const absl::Duration gap = absl::Milliseconds(absl::GetFlag(FLAGS_gap_ms));
  auto is_last = [&](const Stream& s) {
    return duration > absl::ZeroDuration()
               ? s.start + absl::Seconds(s.clip->seconds) + gap >= partial_latency.end
               : s.segment + 1 >= repeat;
  };
  for (Stream& s : streams) s.last_started = is_last(s);
  int finished = 0;
  double audio_total = 0;
  while (finished < num_streams) {
    const absl::Time now = absl::Now();
    for (Stream& s : streams) {
      // Real time: the next utterance starts on the audio clock, not when the final comes (a
      // stream that waited for its finals offered less load exactly when the engine fell behind).
      if (realtime && !s.done && s.end_sent && !s.last_started &&
          now >= s.start + absl::Seconds(s.clip->seconds) + gap) {
        s.start += absl::Seconds(s.clip->seconds) + gap;
        ++s.segment;
        s.next_position = 0;
        s.end_sent = false;
        s.first_partial_pending = true;
        s.last_started = is_last(s);
        if (absl::Status st = engine.StartSegment(s.id, {s.segment, prefix, suffix}); !st.ok())
          return Fail(st.ToString());
      }
      if (s.done || s.end_sent || now < s.start) continue;
      const Clip& clip = *s.clip;
      // Real time: chunk c is complete once its audio and one frame of lookahead have arrived.
      while (!s.end_sent && (realtime || !s.waiting)) {
        const int64_t end = s.next_position + chunk_positions;
        if (end <= clip.conv_positions) {
          const absl::Time due = s.start + absl::Milliseconds(20 * end + 10);
          if (realtime && now < due) break;
          auto chunk = MakeChunk(clip, s.segment, s.next_position, end, mels, realtime ? due : now);
          chunk_tracker.Sent(s.id, s.segment, chunk->audio_end_seconds, chunk->arrival_time);
          if (absl::Status st = engine.SubmitChunk(s.id, std::move(chunk)); !st.ok())
            return Fail(st.ToString());
          s.next_position = end;
          s.waiting = sequence_config.partial_updates;
        } else {
          const absl::Time due = s.start + absl::Seconds(clip.seconds);
          if (realtime && now < due) break;
          auto segment_end =
              MakeSegmentEnd(clip, s.segment, s.next_position, mels, realtime ? due : now);
          if (absl::Status st = engine.EndSegment(s.id, std::move(segment_end)); !st.ok())
            return Fail(st.ToString());
          s.end_sent = true;
          ++s.finals_pending;
        }
      }
    }
    for (engine::SequenceOutput& output : engine.PopOutputs(absl::Milliseconds(1))) {
      Stream& s = *by_id[output.id];
      if (!output.status.ok()) return Fail(output.status.ToString());
      const absl::Time received = absl::Now();
      s.compute += output.compute_time;
      s.waiting = false;
      const absl::Duration latency = received - output.input_time;
      (output.is_final ? final_queue_wait : partial_queue_wait).Add(output.queue_wait);
      for (const ChunkLatency::Reflected& r :
           chunk_tracker.Update(output.id, output.segment_index, output.audio_end_seconds,
                                output.is_final, received)) {
        chunk_latency.Add(r.latency, r.arrival);
      }
      if (!output.is_final) {
        partial_latency.Add(latency, output.input_time);
        if (s.first_partial_pending && output.segment_index == s.segment) {
          first_partial_latency.Add(latency);
          s.first_partial_pending = false;
        }
        continue;
      }
      final_latency.Add(latency, output.input_time);
      s.audio_done_seconds += s.clip->seconds;
      audio_total += s.clip->seconds;
      --s.finals_pending;
      if (realtime) {  // the next utterance started on the audio clock, in the send loop
        if (s.last_started && s.end_sent && s.finals_pending == 0) {
          s.done = true;
          ++finished;
        }
        continue;
      }
      const bool another =
          duration > absl::ZeroDuration() ? received < partial_latency.end : s.segment + 1 < repeat;
      ++s.segment;
      if (another) {
        s.start = received;
        s.next_position = 0;
        s.end_sent = false;
        s.first_partial_pending = true;
        if (absl::Status st = engine.StartSegment(s.id, {s.segment, prefix, suffix}); !st.ok())
          return Fail(st.ToString());
      } else {
        s.done = true;
        ++finished;
      }
    }
  }
  const double wall_seconds = absl::ToDoubleSeconds(absl::Now() - t0);
  // The timed run only: the warm-up's steps and times are subtracted.
  engine::EngineStats stats = engine.stats();
  stats.steps -= before.steps;
  stats.step_sequences -= before.step_sequences;
  stats.tokens_generated -= before.tokens_generated;
  stats.busy_time -= before.busy_time;
  stats.encoder_time -= before.encoder_time;
  stats.decoder_time -= before.decoder_time;
  stats.wait_time -= before.wait_time;
  for (Stream& s : streams) engine.Release(s.id);
  WaitForFreeKvBlocks(engine, absl::Seconds(1));
  const engine::EngineStats after = engine.stats();

  double max_rtf = 0, sum_rtf = 0;
  for (const Stream& s : streams) {
    const double rtf = absl::ToDoubleSeconds(s.compute) / s.audio_done_seconds;
    max_rtf = std::max(max_rtf, rtf);
    sum_rtf += rtf;
  }
  JsonWriter json;
  json.Add("streams", num_streams);
  json.Add("mode", absl::GetFlag(FLAGS_mode));
  json.Add("chunk_ms", chunk_ms);
  json.Add("model", !simulated_cost.empty()               ? "simulated:" + simulated_cost
                    : absl::GetFlag(FLAGS_random_weights) ? "random:" + absl::GetFlag(FLAGS_preset)
                                                          : absl::GetFlag(FLAGS_model));
  json.Add("device", absl::GetFlag(FLAGS_device));
  json.Add("cuda_graphs", graphs_summary);
  json.Add("audio_seconds", audio_total);
  json.Add("wall_seconds", wall_seconds);
  json.Add("throughput_audio_seconds_per_second", audio_total / wall_seconds);
  json.Add("real_time_factor_max", max_rtf);
  json.Add("real_time_factor_mean", sum_rtf / num_streams);
  json.Add("stagger_ms", static_cast<int64_t>(absl::ToInt64Milliseconds(stagger)));
  json.Add("partials", partial_latency.all.count());
  json.Add("partial_latency_ms_p50", partial_latency.all.PercentileMs(0.50));
  json.Add("partial_latency_ms_p95", partial_latency.all.PercentileMs(0.95));
  json.Add("partial_latency_ms_p99", partial_latency.all.PercentileMs(0.99));
  json.Add("chunks", chunk_latency.all.count());
  json.Add("chunk_latency_ms_p50", chunk_latency.all.PercentileMs(0.50));
  json.Add("chunk_latency_ms_p95", chunk_latency.all.PercentileMs(0.95));
  json.Add("first_partial_latency_ms_p50", first_partial_latency.PercentileMs(0.50));
  json.Add("first_partial_latency_ms_p95", first_partial_latency.PercentileMs(0.95));
  json.Add("partial_queue_wait_ms_p50", partial_queue_wait.PercentileMs(0.50));
  json.Add("partial_queue_wait_ms_p95", partial_queue_wait.PercentileMs(0.95));
  json.Add("final_latency_ms_p50", final_latency.all.PercentileMs(0.50));
  json.Add("final_latency_ms_p95", final_latency.all.PercentileMs(0.95));
  json.Add("final_queue_wait_ms_p95", final_queue_wait.PercentileMs(0.95));
  if (duration > absl::ZeroDuration()) {
    json.Add("steady_window_s", absl::ToDoubleSeconds(duration));
    json.Add("partials_steady", partial_latency.steady.count());
    json.Add("partial_latency_ms_p50_steady", partial_latency.steady.PercentileMs(0.50));
    json.Add("partial_latency_ms_p95_steady", partial_latency.steady.PercentileMs(0.95));
    json.Add("chunks_steady", chunk_latency.steady.count());
    json.Add("chunk_latency_ms_p95_steady", chunk_latency.steady.PercentileMs(0.95));
    json.Add("finals_steady", final_latency.steady.count());
    json.Add("final_latency_ms_p50_steady", final_latency.steady.PercentileMs(0.50));
    json.Add("final_latency_ms_p95_steady", final_latency.steady.PercentileMs(0.95));
  }
  json.Add("decode_tokens_per_second", stats.tokens_generated / wall_seconds);
  json.Add("steps", stats.steps);
  json.Add("mean_batch_size",
           stats.steps > 0 ? static_cast<double>(stats.step_sequences) / stats.steps : 0.0);
  json.Add("engine_busy_fraction", absl::ToDoubleSeconds(stats.busy_time) / wall_seconds);
  json.Add("encoder_seconds", absl::ToDoubleSeconds(stats.encoder_time));
  json.Add("decoder_seconds", absl::ToDoubleSeconds(stats.decoder_time));
  // Of decoder_seconds, the waits for the device: on a GPU the rest of the busy time is host work.
  json.Add("device_wait_seconds", absl::ToDoubleSeconds(stats.wait_time));
  json.Add("kv_blocks_total", stats.kv_blocks_total);
  json.Add("kv_blocks_peak", stats.kv_blocks_peak);
  json.Add("kv_blocks_after", after.kv_blocks_used);
  // The encoder keys and values partials cached at most at once (PERFORMANCE.md: memory beside
  // throughput), in MiB; with the draft tokens verified and kept.
  json.Add("encoder_kv_peak_mib", static_cast<double>(stats.encoder_kv_positions_peak) *
                                      stats.encoder_kv_bytes_per_position / 1048576.0);
  json.Add("draft_tokens", stats.draft_tokens);
  json.Add("draft_accepted_tokens", stats.draft_accepted_tokens);
  // The process's peak resident memory (PERFORMANCE.md: beside every throughput figure); on a GPU
  // the device's memory is the run script's to sample.
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  json.Add("peak_rss_mib", static_cast<double>(usage.ru_maxrss) / 1024.0);  // ru_maxrss: KiB
  json.Add("warmup_streams", warmup_streams);
  step_recorder.AddTo(json);
  if (const std::string path = absl::GetFlag(FLAGS_step_log);
      !path.empty() && !step_recorder.WriteCsv(path)) {
    return Fail("cannot write --step_log " + path);
  }
  std::cout << json.ToString() << std::endl;
  engine.Stop();
  return after.kv_blocks_used == 0 ? 0
                                   : Fail("KV blocks still in use after every stream was released");
}

}  // namespace
}  // namespace speechllm::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Replays WAV clips as concurrent streams through the engine (no gRPC) and prints one JSON "
      "summary.");
  speechllm::engine::ParseProgramFlagsOnly(argc, argv);
  speechllm::engine::TuneAllocatorForTensors();
  return speechllm::bench::Run();
}
