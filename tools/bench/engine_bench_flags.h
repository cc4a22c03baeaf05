// speechllm-bench's command-line flags (engine_bench_flags.cc), declared for engine_bench.cc's
// Run(). Read on the benchmark's main thread after absl::ParseCommandLine.
#ifndef SPEECHLLM_TOOLS_BENCH_ENGINE_BENCH_FLAGS_H_
#define SPEECHLLM_TOOLS_BENCH_ENGINE_BENCH_FLAGS_H_

#include <string>

#include "absl/flags/declare.h"

ABSL_DECLARE_FLAG(std::string, model);
ABSL_DECLARE_FLAG(bool, random_weights);
ABSL_DECLARE_FLAG(std::string, preset);
ABSL_DECLARE_FLAG(std::string, wav);
ABSL_DECLARE_FLAG(int, streams);
ABSL_DECLARE_FLAG(int, repeat);
ABSL_DECLARE_FLAG(int, stagger_ms);
ABSL_DECLARE_FLAG(double, duration_s);
ABSL_DECLARE_FLAG(int, chunk_ms);
ABSL_DECLARE_FLAG(int, gap_ms);
ABSL_DECLARE_FLAG(std::string, mode);
ABSL_DECLARE_FLAG(std::string, final_mode);
ABSL_DECLARE_FLAG(bool, partials);
ABSL_DECLARE_FLAG(int, max_new_tokens);
ABSL_DECLARE_FLAG(int, max_new_tokens_per_update);
ABSL_DECLARE_FLAG(std::string, prefix_ids);
ABSL_DECLARE_FLAG(std::string, suffix_ids);
ABSL_DECLARE_FLAG(std::string, device);
ABSL_DECLARE_FLAG(std::string, dtype);
ABSL_DECLARE_FLAG(int, threads);
ABSL_DECLARE_FLAG(int, kv_cache_mb);
ABSL_DECLARE_FLAG(int, max_step_tokens);
ABSL_DECLARE_FLAG(int, max_step_encoder_positions);
ABSL_DECLARE_FLAG(int, warmup_streams);
ABSL_DECLARE_FLAG(std::string, step_log);
ABSL_DECLARE_FLAG(bool, sync_stages);
ABSL_DECLARE_FLAG(std::string, simulate_step_cost);
ABSL_DECLARE_FLAG(int, max_audio_tokens);

#endif  // SPEECHLLM_TOOLS_BENCH_ENGINE_BENCH_FLAGS_H_
