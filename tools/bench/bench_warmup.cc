#include "tools/bench/bench_warmup.h"

#include "engine/status_macros.h"

namespace speechllm::bench {

using engine::SequenceId;

void WaitForFreeKvBlocks(engine::Engine& engine, absl::Duration limit) {
  const absl::Time deadline = absl::Now() + limit;
  while (engine.stats().kv_blocks_used > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
}

absl::Status WarmUp(engine::Engine& engine, const std::vector<Clip>& clips, int count,
                    int64_t chunk_positions, int64_t mels,
                    const engine::SequenceConfig& sequence_config,
                    const std::vector<int64_t>& prefix, const std::vector<int64_t>& suffix) {
  std::vector<SequenceId> ids;
  for (int i = 0; i < count; ++i) {
    const Clip& clip = clips[i % clips.size()];
    SPEECHLLM_ASSIGN_OR_RETURN(SequenceId id, engine.AddSequence(sequence_config));
    ids.push_back(id);
    SPEECHLLM_RETURN_IF_ERROR(engine.StartSegment(id, {0, prefix, suffix}));
    int64_t next = 0;
    for (; next + chunk_positions <= clip.conv_positions; next += chunk_positions) {
      SPEECHLLM_RETURN_IF_ERROR(engine.SubmitChunk(
          id, MakeChunk(clip, 0, next, next + chunk_positions, mels, absl::Now())));
    }
    SPEECHLLM_RETURN_IF_ERROR(
        engine.EndSegment(id, MakeSegmentEnd(clip, 0, next, mels, absl::Now())));
  }
  int finals = 0;
  const absl::Time deadline = absl::Now() + absl::Minutes(5);
  while (finals < count && absl::Now() < deadline) {
    for (const engine::SequenceOutput& output : engine.PopOutputs(absl::Milliseconds(10))) {
      SPEECHLLM_RETURN_IF_ERROR(output.status);
      finals += output.is_final ? 1 : 0;
    }
  }
  for (SequenceId id : ids) engine.Release(id);
  WaitForFreeKvBlocks(engine, absl::Seconds(5));
  if (finals < count) return absl::DeadlineExceededError("warm-up did not finish in 5 minutes");
  return absl::OkStatus();
}

}  // namespace speechllm::bench
