// Per-chunk update latency for speechllm-bench: each chunk's arrival -> the first update (partial
// or final) that reflects its audio. An engine that falls behind takes several chunks into one
// update, and that update's own latency counts from its newest chunk only: the older chunks' waits
// never showed in partial_latency. Owned and called by the bench's main loop (one thread).
#ifndef SPEECHLLM_TOOLS_BENCH_CHUNK_LATENCY_H_
#define SPEECHLLM_TOOLS_BENCH_CHUNK_LATENCY_H_

#include <cstdint>
#include <deque>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"

namespace speechllm::bench {

class ChunkLatency {
 public:
  // A chunk of `segment` whose audio ends at `audio_end_seconds` arrived at `arrival`.
  void Sent(int64_t sequence, int64_t segment, double audio_end_seconds, absl::Time arrival);

  struct Reflected {
    absl::Duration latency;  // received - arrival
    absl::Time arrival;
  };
  // An update of `segment` reflecting audio up to `audio_end_seconds` (a final: all of the
  // segment's audio) came at `received`: the chunks it reflects for the first time.
  std::vector<Reflected> Update(int64_t sequence, int64_t segment, double audio_end_seconds,
                                bool is_final, absl::Time received);

 private:
  struct Pending {
    int64_t segment;
    double audio_end_seconds;
    absl::Time arrival;
  };
  absl::flat_hash_map<int64_t, std::deque<Pending>> pending_;
};

}  // namespace speechllm::bench

#endif  // SPEECHLLM_TOOLS_BENCH_CHUNK_LATENCY_H_
