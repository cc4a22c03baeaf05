// Engine admission: the reservation ledger behind AddSequence and ResizeReservation. Each stream
// reserves one worst-case segment of KV blocks and, where the runner counts them, of encoder
// positions, so that an admitted stream never runs out of either (ARCHITECTURE.md 5).
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/engine.h"

namespace speechllm::engine {

SequenceConfig Engine::ResolveShape(SequenceConfig config) const {
  auto resolve = [](int64_t value, int64_t bound) {
    return value <= 0 ? bound : std::min(value, bound);
  };
  config.reserved_audio_tokens =
      resolve(config.reserved_audio_tokens, config_.max_audio_tokens_per_segment);
  config.reserved_suffix_tokens = resolve(config.reserved_suffix_tokens, config_.max_suffix_tokens);
  return config;
}

int64_t Engine::WorstCaseBlocks(const SequenceConfig& config) const {
  const SequenceConfig shape = ResolveShape(config);
  const int64_t worst_tokens = config_.max_prefix_tokens + shape.reserved_audio_tokens +
                               shape.reserved_suffix_tokens + shape.max_new_tokens_per_segment + 1;
  return (worst_tokens + block_size_ - 1) / block_size_;
}

absl::Status Engine::CheckPositions(const SequenceConfig& config) const {
  const SequenceConfig shape = ResolveShape(config);
  const int64_t positions = config_.max_prefix_tokens + shape.reserved_audio_tokens +
                            shape.reserved_suffix_tokens + shape.max_new_tokens_per_segment;
  const int64_t model_positions = model_config_.text.max_position_embeddings;
  if (positions <= model_positions) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "a segment may need ", positions, " positions (", config_.max_prefix_tokens, " prefix, ",
      shape.reserved_audio_tokens, " audio, ", shape.reserved_suffix_tokens, " prompt after it, ",
      shape.max_new_tokens_per_segment, " new tokens); the model has ", model_positions,
      " (max_position_embeddings)"));
}

int64_t Engine::EncoderPositions(const SequenceConfig& config) const {
  if (!encoder_counted_) return 0;
  // Without partials an exact final re-encodes the whole segment and chunks are dropped
  // (Scheduler::AddChunk): nothing is cached.
  if (!config.partial_updates && config.final_mode == FinalMode::kExact) return 0;
  // A chunk may end one position past the pairs of its audio tokens (CheckChunkShape).
  return kEncoderPositionsPerAudioToken * ResolveShape(config).reserved_audio_tokens + 1;
}

Engine::EncoderBudget Engine::ChooseEncoderBudget() const {
  if (!encoder_counted_) return {};
  const int64_t bytes_per_position = runner_->encoder_kv_bytes_per_position();
  if (config_.encoder_kv_cache_bytes > 0)
    return {config_.encoder_kv_cache_bytes / bytes_per_position, false};
  const int64_t automatic =
      AutomaticEncoderPositions(runner_->num_kv_blocks(), runner_->block_size());
  // The automatic budget follows the KV cache, which an operator sizes to fill the device: on an
  // 80 GB card, the 7B's 15 GB of weights and a 55 GB KV cache leave about 9 GB, and the streams
  // that cache admits may cache about 30 GB of encoder K/V. Half of what is free stays for the
  // steps' activations and the allocator.
  const int64_t free_bytes = runner_->free_memory_bytes();
  if (free_bytes < 0) return {automatic, false};
  const int64_t within_memory = free_bytes / 2 / bytes_per_position;
  return within_memory < automatic ? EncoderBudget{within_memory, true}
                                   : EncoderBudget{automatic, false};
}

int64_t Engine::AutomaticEncoderPositions(int64_t kv_blocks, int64_t block_size) const {
  // A stream reserves 2a + 1 encoder positions and at least (P + a + 3) / B blocks for a reserved
  // audio tokens, the longest prefix P, a suffix and a new token of at least 1 and the end token.
  // (2a + 1)B / (P + a + 3) grows with a (its derivative has the sign of 2P + 5), so with a at its
  // bound A no mix of streams the blocks admit needs more than kv_blocks (2A + 1)B / (P + A + 3).
  const int64_t max_audio = config_.max_audio_tokens_per_segment;
  return kv_blocks * block_size * (kEncoderPositionsPerAudioToken * max_audio + 1) /
         (config_.max_prefix_tokens + max_audio + 3);
}

std::vector<Engine::Reservation>::iterator Engine::FindReservation(SequenceId id) {
  return std::find_if(reservations_.begin(), reservations_.end(),
                      [id](const Reservation& r) { return r.id == id; });
}

absl::Status Engine::ResizeReservation(SequenceId id, int64_t audio_tokens, int64_t suffix_tokens) {
  if (audio_tokens > config_.max_audio_tokens_per_segment ||
      suffix_tokens > config_.max_suffix_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("a segment of ", audio_tokens, " audio and ", suffix_tokens,
                     " suffix tokens exceeds the engine's bounds of ",
                     config_.max_audio_tokens_per_segment, " and ", config_.max_suffix_tokens));
  }
  absl::MutexLock lock(&mutex_);
  const auto r = FindReservation(id);
  if (r == reservations_.end()) return absl::NotFoundError(absl::StrCat("no sequence ", id));
  SequenceConfig shape = r->shape;
  shape.reserved_audio_tokens = std::max(shape.reserved_audio_tokens, audio_tokens);
  shape.reserved_suffix_tokens = std::max(shape.reserved_suffix_tokens, suffix_tokens);
  if (absl::Status status = CheckPositions(shape); !status.ok()) return status;
  const int64_t blocks = WorstCaseBlocks(shape);
  if (reserved_blocks_ - r->blocks + blocks > stats_.kv_blocks_total) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "KV cache budget exhausted: the stream's longer prompt or input needs ", blocks - r->blocks,
        " more blocks, ", stats_.kv_blocks_total - reserved_blocks_, " are unreserved"));
  }
  const int64_t encoder_positions = EncoderPositions(shape);
  if (reserved_encoder_positions_ - r->encoder_positions + encoder_positions >
      encoder_budget_.positions) {
    return absl::ResourceExhaustedError(
        absl::StrCat("encoder K/V budget exhausted: the stream's longer input needs ",
                     encoder_positions - r->encoder_positions, " more encoder positions, ",
                     encoder_budget_.positions - reserved_encoder_positions_, " are unreserved"));
  }
  reserved_blocks_ += blocks - r->blocks;
  r->blocks = blocks;
  reserved_encoder_positions_ += encoder_positions - r->encoder_positions;
  r->encoder_positions = encoder_positions;
  r->shape = shape;
  return absl::OkStatus();
}

absl::StatusOr<SequenceId> Engine::Reserve(const SequenceConfig& config) {
  if (config.max_new_tokens_per_update < 1 || config.max_new_tokens_per_segment < 1) {
    return absl::InvalidArgumentError(
        "max_new_tokens_per_update and max_new_tokens_per_segment must be >= 1");
  }
  if (absl::Status guard = config.repetition_guard.Validate(); !guard.ok()) return guard;
  if (absl::Status positions = CheckPositions(config); !positions.ok()) return positions;
  const int64_t worst_blocks = WorstCaseBlocks(config);
  const int64_t encoder_positions = EncoderPositions(config);
  if (stopping_) return absl::UnavailableError("engine stopped");
  if (static_cast<int64_t>(reservations_.size()) >= config_.max_num_sequences) {
    ++stats_.admission_rejections;
    return absl::ResourceExhaustedError(absl::StrCat(
        "engine at its limit of ", config_.max_num_sequences, " concurrent sequences"));
  }
  if (reserved_blocks_ + worst_blocks > stats_.kv_blocks_total) {
    ++stats_.admission_rejections;
    return absl::ResourceExhaustedError(
        absl::StrCat("KV cache budget exhausted: a stream needs ", worst_blocks, " blocks, ",
                     stats_.kv_blocks_total - reserved_blocks_, " of ", stats_.kv_blocks_total,
                     " are unreserved"));
  }
  if (reserved_encoder_positions_ + encoder_positions > encoder_budget_.positions) {
    ++stats_.admission_rejections;
    return absl::ResourceExhaustedError(absl::StrCat(
        "encoder K/V budget exhausted: a stream needs ", encoder_positions, " encoder positions, ",
        encoder_budget_.positions - reserved_encoder_positions_, " of ", encoder_budget_.positions,
        " are unreserved"));
  }
  const SequenceId id = next_id_++;
  reserved_blocks_ += worst_blocks;
  reserved_encoder_positions_ += encoder_positions;
  reservations_.push_back(Reservation{id, ResolveShape(config), worst_blocks, encoder_positions});
  return id;
}

absl::StatusOr<SequenceConfig> Engine::ShapeOf(SequenceId id) {
  absl::MutexLock lock(&mutex_);
  const auto r = FindReservation(id);
  if (r == reservations_.end()) return absl::NotFoundError(absl::StrCat("no sequence ", id));
  return r->shape;
}

}  // namespace speechllm::engine
