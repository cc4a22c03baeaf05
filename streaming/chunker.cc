#include "streaming/chunker.h"

#include <algorithm>
#include <cassert>

#include "absl/strings/str_cat.h"
#include "engine/model/audio_lengths.h"

namespace speechllm::streaming {
namespace {

// conv2 stride 2 times the average pool's 2: one audio token per 4 frames.
constexpr int64_t kFramesPerAudioToken = 4;
constexpr int kMaxChunkMs = 30000;

}  // namespace

std::string ChunkSpec::ToString() const {
  return absl::StrCat("positions [", first_position, ", ", end_position, ") frames [", first_frame,
                      ", ", end_frame_exclusive, ")");
}

bool ChunkSpec::operator==(const ChunkSpec& other) const {
  return first_position == other.first_position && end_position == other.end_position &&
         first_frame == other.first_frame && end_frame_exclusive == other.end_frame_exclusive;
}

absl::Status Chunker::ValidateChunkMs(int chunk_ms) {
  const engine::FeatureConfig features;
  const int token_ms =
      static_cast<int>(kFramesPerAudioToken * 1000 * features.hop_length / features.sample_rate_hz);
  if (chunk_ms < token_ms || chunk_ms > kMaxChunkMs || chunk_ms % token_ms != 0) {
    return absl::InvalidArgumentError(absl::StrCat("chunk_ms must be a multiple of ", token_ms,
                                                   " in [", token_ms, ", ", kMaxChunkMs, "], got ",
                                                   chunk_ms));
  }
  return absl::OkStatus();
}

int64_t Chunker::ChunkMsToFrames(int chunk_ms, const engine::FeatureConfig& features) {
  return static_cast<int64_t>(chunk_ms) * features.sample_rate_hz / 1000 / features.hop_length;
}

Chunker::Chunker(int64_t chunk_frames, int64_t max_source_positions)
    : chunk_frames_(chunk_frames),
      max_positions_(max_source_positions),
      max_frames_(2 * max_source_positions) {
  assert(chunk_frames > 0 && chunk_frames % kFramesPerAudioToken == 0);
}

void Chunker::Reset() {
  next_position_ = 0;
  done_ = false;
}

ChunkSpec Chunker::MakeSpec(int64_t first_position, int64_t end_position) const {
  ChunkSpec spec;
  spec.first_position = first_position;
  spec.end_position = end_position;
  // conv2 position p reads conv1 outputs 2p-1 .. 2p+1, which read mel frames 2p-2 .. 2p+2; frame
  // -1 and frames >= max_frames are the convs' zero padding.
  spec.first_frame = std::max<int64_t>(0, 2 * first_position - 2);
  spec.end_frame_exclusive = std::min(2 * end_position + 1, max_frames_);
  return spec;
}

std::optional<ChunkSpec> Chunker::Next(int64_t frames_ready, bool input_finished,
                                       int64_t num_valid_frames) {
  if (done_ || next_position_ >= max_positions_) {
    done_ = done_ || input_finished;
    return std::nullopt;
  }
  const int64_t full_end = std::min(next_position_ + chunk_frames_ / 2, max_positions_);
  int64_t end = full_end;
  if (input_finished) {
    const int64_t valid_positions =
        std::min(engine::ConvOutputLength(num_valid_frames), max_positions_);
    end = std::min(full_end, valid_positions);
    if (end <= next_position_) {
      done_ = true;
      return std::nullopt;
    }
  }
  const ChunkSpec spec = MakeSpec(next_position_, end);
  if (frames_ready < spec.end_frame_exclusive) return std::nullopt;
  next_position_ = end;
  if (input_finished && end < full_end) done_ = true;
  return spec;
}

}  // namespace speechllm::streaming
