// Chunker: splits one segment's log-mel frames into encoder chunks of chunk_frames frames, each
// with the two frames of left context and one of lookahead the conv stem needs (ARCHITECTURE.md 5).
// Pure arithmetic over frame counts; owned by one stream's Session (input half) and called on the
// gRPC thread that reads that stream; not thread-safe.
#ifndef SPEECHLLM_STREAMING_CHUNKER_H_
#define SPEECHLLM_STREAMING_CHUNKER_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "engine/model/model_config.h"

namespace speechllm::streaming {

// One encoder chunk: conv2 positions [first_position, end_position) are computed from mel frames
// [first_frame, end_frame_exclusive) = [max(0, 2 * first_position - 2), 2 * end_position] (clipped
// to max_frames, where the conv's zero padding begins), as engine::EncoderChunk documents.
struct ChunkSpec {
  int64_t first_position = 0;
  int64_t end_position = 0;
  int64_t first_frame = 0;
  int64_t end_frame_exclusive = 0;

  int64_t num_positions() const { return end_position - first_position; }
  int64_t num_frames() const { return end_frame_exclusive - first_frame; }
  std::string ToString() const;
  bool operator==(const ChunkSpec& other) const;
};

class Chunker {
 public:
  // OK when `chunk_ms` is a multiple of 40 ms (4 frames: pooling pairs of conv2 positions never
  // straddle chunks) in [40, 30000]; INVALID_ARGUMENT naming chunk_ms and the rule otherwise.
  static absl::Status ValidateChunkMs(int chunk_ms);
  // Frames of a chunk of `chunk_ms` (10 ms per frame at the default 16 kHz / hop 160).
  static int64_t ChunkMsToFrames(int chunk_ms,
                                 const engine::FeatureConfig& features = engine::FeatureConfig());

  // `chunk_frames` > 0 and a multiple of 4 (see ValidateChunkMs); `max_source_positions` is the
  // encoder's position table (1500): no chunk reaches past it, and frames stop at twice it.
  explicit Chunker(int64_t chunk_frames, int64_t max_source_positions =
                                             engine::AudioEncoderConfig().max_source_positions);

  // Starts a new segment at position 0.
  void Reset();

  // The next chunk whose frames are all available, or nullopt. `frames_ready` frames of the segment
  // exist (AudioFrontend::NumFramesReady()); once `input_finished`, `num_valid_frames` is the
  // segment's final ceil(samples / hop). Full chunk c covers positions [c F/2, (c+1) F/2) and is
  // ready when frames_ready > (c+1) F. After input_finished, the remaining positions up to
  // ConvOutputLength(num_valid_frames) form one shorter tail chunk (never an empty one). Each call
  // that returns a chunk advances past it; call repeatedly until nullopt.
  std::optional<ChunkSpec> Next(int64_t frames_ready, bool input_finished,
                                int64_t num_valid_frames);

  int64_t chunk_frames() const { return chunk_frames_; }
  // First conv2 position not yet handed out.
  int64_t next_position() const { return next_position_; }
  // True once input was finished and every valid position has been handed out.
  bool done() const { return done_; }

 private:
  ChunkSpec MakeSpec(int64_t first_position, int64_t end_position) const;

  int64_t chunk_frames_;
  int64_t max_positions_;
  int64_t max_frames_;
  int64_t next_position_ = 0;
  bool done_ = false;
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_CHUNKER_H_
