// Clip: a WAV file turned into the log-mel frames a streaming session would send, and the engine
// messages (encoder chunks, segment end) that replay it. Used by speechllm-bench's main thread.
#ifndef SPEECHLLM_TOOLS_BENCH_BENCH_CLIP_H_
#define SPEECHLLM_TOOLS_BENCH_BENCH_CLIP_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engine/model/log_mel.h"
#include "engine/types.h"

namespace speechllm::bench {

// A clip's features as the session would send them: frame-major, floored with the segment maximum.
struct Clip {
  std::string name;
  double seconds = 0;
  std::vector<float> frames;
  int64_t num_frames = 0, num_valid_frames = 0, conv_positions = 0;
};

absl::StatusOr<Clip> LoadClip(const std::string& path, const engine::LogMel& log_mel);

// The frames conv positions [first, end) need (with the conv stem's context), zero-padded at the
// end.
std::vector<float> BlockFrames(const Clip& clip, int64_t first, int64_t end, int64_t mels);

// Conv positions [first, end) of `clip` as the session would submit them, arriving at `arrival`.
std::unique_ptr<engine::EncoderChunk> MakeChunk(const Clip& clip, int64_t segment, int64_t first,
                                                int64_t end, int64_t mels, absl::Time arrival);

// The end of `clip`'s utterance: its whole features, and the tail from `next_position` on.
std::unique_ptr<engine::SegmentEnd> MakeSegmentEnd(const Clip& clip, int64_t segment,
                                                   int64_t next_position, int64_t mels,
                                                   absl::Time endpoint);

}  // namespace speechllm::bench

#endif  // SPEECHLLM_TOOLS_BENCH_BENCH_CLIP_H_
