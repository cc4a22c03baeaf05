// speechllm-bench's warm-up and clean-up: utterances sent through the engine unpaced before the
// timed run (first-use costs such as cuBLAS plans and allocator growth stay out of the figures),
// and the wait for released sequences' KV blocks. The benchmark's main thread.
#ifndef SPEECHLLM_TOOLS_BENCH_BENCH_WARMUP_H_
#define SPEECHLLM_TOOLS_BENCH_BENCH_WARMUP_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "tools/bench/bench_clip.h"

namespace speechllm::bench {

// Released sequences free their KV blocks on the engine thread: waits up to `limit` for that.
void WaitForFreeKvBlocks(engine::Engine& engine, absl::Duration limit);

// Sends `count` utterances (the clips in turn) through the engine at once, unpaced, waits for
// their finals and releases them; DEADLINE_EXCEEDED after 5 minutes.
absl::Status WarmUp(engine::Engine& engine, const std::vector<Clip>& clips, int count,
                    int64_t chunk_positions, int64_t mels,
                    const engine::SequenceConfig& sequence_config,
                    const std::vector<int64_t>& prefix, const std::vector<int64_t>& suffix);

}  // namespace speechllm::bench

#endif  // SPEECHLLM_TOOLS_BENCH_BENCH_WARMUP_H_
