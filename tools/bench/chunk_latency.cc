#include "tools/bench/chunk_latency.h"

namespace speechllm::bench {

void ChunkLatency::Sent(int64_t sequence, int64_t segment, double audio_end_seconds,
                        absl::Time arrival) {
  pending_[sequence].push_back({segment, audio_end_seconds, arrival});
}

std::vector<ChunkLatency::Reflected> ChunkLatency::Update(int64_t sequence, int64_t segment,
                                                          double audio_end_seconds, bool is_final,
                                                          absl::Time received) {
  std::vector<Reflected> reflected;
  auto found = pending_.find(sequence);
  if (found == pending_.end()) return reflected;
  std::deque<Pending>& pending = found->second;
  // Chunks are sent in order, so the ones an update reflects are at the front. An earlier
  // segment's chunks left by its final never stay (the final takes them all).
  constexpr double kSlackSeconds = 1e-6;  // audio ends are sums of 20 ms steps
  while (!pending.empty() && pending.front().segment <= segment &&
         (pending.front().segment < segment || is_final ||
          pending.front().audio_end_seconds <= audio_end_seconds + kSlackSeconds)) {
    if (pending.front().segment == segment) {
      reflected.push_back({received - pending.front().arrival, pending.front().arrival});
    }
    pending.pop_front();
  }
  if (pending.empty()) pending_.erase(found);
  return reflected;
}

}  // namespace speechllm::bench
