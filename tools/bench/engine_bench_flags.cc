// speechllm-bench's command-line flags, with their defaults and help (engine_bench_flags.h).
#include "tools/bench/engine_bench_flags.h"

#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(std::string, model, "", "checkpoint directory (or --random_weights --preset)");
ABSL_FLAG(bool, random_weights, false,
          "random weights of --preset's shapes instead of a checkpoint");
ABSL_FLAG(std::string, preset, "tiny",
          "shapes for --random_weights: tiny (the golden fixture) or 7b");
ABSL_FLAG(
    std::string, wav, "",
    "comma-separated 16 kHz WAV clips, assigned to streams in turn (default: the golden clips)");
ABSL_FLAG(int, streams, 1, "concurrent streams");
ABSL_FLAG(int, repeat, 1, "utterances per stream (each stream sends its clip this many times)");
ABSL_FLAG(int, stagger_ms, 0,
          "real-time stream starts spread over this many ms (0 = one chunk: all utterance ends "
          "fall within about a second, the burst case)");
ABSL_FLAG(double, duration_s, 0,
          "instead of --repeat: streams start utterance after utterance until this many seconds "
          "after the last stream started; that window, all streams active, is reported as steady");
ABSL_FLAG(int, chunk_ms, 1000, "encoder chunk, a multiple of 40 ms");
ABSL_FLAG(int, gap_ms, 1000,
          "realtime: silence between a stream's utterances; the next one starts on the audio "
          "clock, whether or not the last one's final has come (a microphone does not wait)");
ABSL_FLAG(std::string, mode, "realtime",
          "realtime (paced, staggered starts) or fast (closed loop)");
ABSL_FLAG(std::string, final_mode, "exact", "exact or fast");
ABSL_FLAG(bool, partials, true, "decode a partial at every chunk");
ABSL_FLAG(int, max_new_tokens, 24, "tokens per utterance (the tiny model has no stop token)");
ABSL_FLAG(int, max_new_tokens_per_update, 8, "tokens one partial update may add");
ABSL_FLAG(std::string, prefix_ids, "", "prompt ids before the audio (default: 1,2,3,<audio_bos>)");
ABSL_FLAG(std::string, suffix_ids, "",
          "prompt ids after the audio (default: <audio_eos>,10,11,12)");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda");
ABSL_FLAG(std::string, dtype, "", "float32 or bfloat16 (default: the checkpoint's)");
ABSL_FLAG(int, threads, 0, "libtorch CPU threads (0 = default)");
ABSL_FLAG(int, kv_cache_mb, 256, "KV cache memory in MiB");
ABSL_FLAG(int, max_step_tokens, 4096, "token budget of one engine step");
ABSL_FLAG(int, max_step_encoder_positions, 6000,
          "encoder positions (20 ms each) one engine step may encode");
ABSL_FLAG(int, warmup_streams, 8,
          "streams sent through the engine (closed loop) before the timed run, to take first-call "
          "costs (CUDA context, cuBLAS handles, allocator growth) out of the figures; 0 = none");
ABSL_FLAG(std::string, step_log, "", "write one CSV line per timed engine step to this file");
ABSL_FLAG(bool, sync_stages, false,
          "wait for the device after each step's encoder pass, so that the step log's encoder_ms "
          "and decoder_ms are device times (costs some overlap on a GPU)");
ABSL_FLAG(std::string, simulate_step_cost, "",
          "BASE,DECODE_ROW,PREFILL_TOKEN,ENCODER_POSITION[,EVERY,OUTLIER] in ms: no model; the toy "
          "FakeModelRunner sleeps this much per step (base + per one-token item + per token of "
          "longer items + per encoder position; every EVERY-th step OUTLIER more), to study the "
          "scheduler under a device's step costs on any machine");
ABSL_FLAG(int, max_audio_tokens, 750,
          "audio tokens per utterance reserved at admission (750 = 30 s)");
