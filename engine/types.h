// Plain data that crosses the Engine facade (no torch types): sequence ids, per-sequence and
// per-segment configuration, encoder chunks, segment ends and the outputs the engine produces.
// Created on the caller's thread, moved into the engine (ownership transfers through unique_ptr) or
// copied out of it; no object here is shared between threads.
#ifndef SPEECHLLM_ENGINE_TYPES_H_
#define SPEECHLLM_ENGINE_TYPES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "engine/repetition_guard.h"

namespace speechllm::engine {

using SequenceId = uint64_t;
constexpr SequenceId kInvalidSequenceId = 0;

enum class FinalMode { kExact, kFast };

// One stream's engine record: fixed for its lifetime.
struct SequenceConfig {
  FinalMode final_mode = FinalMode::kExact;
  // false: no partial updates; chunks are not decoded (in exact mode not even encoded).
  bool partial_updates = true;
  // The partial updates are drafts nobody reads (a finals-only FAST stream decodes them so that
  // its final verifies them in one step): their chunk updates go after every other stream's work
  // of a step. Nothing is lost when they wait: the final takes in the chunks still queued.
  bool partials_unsent = false;
  int max_new_tokens_per_update = 32;    // new tokens one chunk update may decode
  int max_new_tokens_per_segment = 256;  // length of a segment's final hypothesis
  // Off by default: the engine decodes what the model says (the reference's greedy output). The
  // server turns it on (--repetition_guard_tokens).
  RepetitionGuardConfig repetition_guard;
  // The KV AddSequence reserves for one segment of this stream, by part; 0 means the engine's
  // bound (EngineConfig::max_audio_tokens_per_segment, max_suffix_tokens), and larger values are
  // clamped to it. A stream whose utterances are at most 20 s and whose prompt has no context
  // reserves far less than the engine's 30 s and 512-token worst case. Engine::ResizeReservation
  // grows them (a longer context, embeddings); segments beyond them are INVALID_ARGUMENT.
  int64_t reserved_audio_tokens = 0;
  int64_t reserved_suffix_tokens = 0;
  std::string ToString() const;
};

// The prompt of one segment: prefix_ids + audio tokens + suffix_ids, then the generated text. The
// prefix normally ends with <|audio_bos|>, the suffix starts with <|audio_eos|>.
struct SegmentStart {
  int64_t segment_index = 0;
  std::vector<int64_t> prefix_ids;
  std::vector<int64_t> suffix_ids;
};

// Log-mel frames for one incremental encoder step of a segment (MODEL.md 2.5, ARCHITECTURE 5): the
// conv positions [first_position, end_position) are computed from mel frames
// [2 * first_position - 2, 2 * end_position] (two frames of left context, one of lookahead). For
// the first chunk (first_position == 0) the left context is the conv's zero padding and `frames`
// starts at frame 0. Frames are floored with the running maximum and scaled, frame-major
// [frame][num_mel_bins].
struct EncoderChunk {
  int64_t segment_index = 0;
  int64_t first_position = 0;  // conv2 positions (20 ms each); even
  int64_t end_position = 0;
  std::vector<float> frames;
  // The session's committed token ids for this segment at submission time: updates are forced to
  // begin with them, so partials never contradict committed text.
  std::vector<int64_t> forced_prefix_ids;
  double audio_end_seconds = 0;  // stream time of the last sample this chunk covers
  absl::Time arrival_time;       // when that sample reached the server
};

// The end of a segment. `features` hold every frame the exact re-encode needs (the valid frames
// plus up to two more, MODEL.md 2.5), floored with the segment maximum, frame-major
// [frame][num_mel_bins]. `tail` covers the conv positions after the last submitted chunk (fast
// mode; may be empty).
struct SegmentEnd {
  int64_t segment_index = 0;
  std::vector<float> features;
  int64_t num_frames = 0;
  int64_t num_valid_frames = 0;
  EncoderChunk tail;  // end_position == first_position when there is none
  // Precomputed audio embeddings (projector outputs, row-major [num_audio_embeddings][hidden_size]
  // float32; Recognize's AudioEmbeddings input). When set, `features` and `tail` are empty and the
  // encoder is skipped: the rows take the prompt's audio positions in either final mode.
  std::vector<float> audio_embeddings;
  int64_t num_audio_embeddings = 0;
  std::vector<int64_t> forced_prefix_ids;
  double audio_end_seconds = 0;
  absl::Time endpoint_time;  // when the session decided the endpoint
  // Embedding cache (ARCHITECTURE.md 8), exact finals only. await_embeddings: the engine holds this
  // end, and the ends after it, until Engine::ProvideEmbeddings answers its lookup (the features
  // stay for a miss). return_embeddings: an end encoded from its features hands the projected rows
  // back in its final, with cache_key, for the cache to store.
  bool await_embeddings = false;
  bool return_embeddings = false;
  std::string cache_key;
  absl::Time cache_answer_time = absl::InfinitePast();  // set by the engine when a held end goes on
  // false: nobody will read this segment's text (the silence guard dropped it): the final comes
  // at once, empty, without encoding or decoding anything.
  bool text_wanted = true;
};

// The embedding cache's answer for a held segment end (Engine::ProvideEmbeddings): the projected
// rows, [num_rows][hidden_size] float32, of a hit; num_rows 0 for a miss, whose final returns its
// rows under cache_key (SegmentEnd::return_embeddings).
struct CachedEmbeddings {
  int64_t segment_index = 0;
  std::vector<float> rows;
  int64_t num_rows = 0;
  std::string cache_key;
};

// A partial (after a chunk update) or final (after a segment end) hypothesis of one segment.
struct SequenceOutput {
  SequenceId id = kInvalidSequenceId;
  int64_t segment_index = 0;
  bool is_final = false;
  absl::Status status;             // not OK: the sequence failed (its stream ends with this status)
  std::vector<int64_t> token_ids;  // whole hypothesis of the segment, a stop token excluded
  std::vector<float> token_margins;  // top-1 minus top-2 logit per token (diagnostics)
  // Per token, the model's log-probability of it (float32), for a final's confidence; for a
  // committed token the model disagreed with, that of the committed token.
  std::vector<float> token_log_probabilities;
  int64_t commit_conflicts = 0;  // forced tokens this update's model choices disagreed with
  // Tokens of a loop the repetition guard removed (decoding stopped there).
  int64_t repeated_tokens_cut = 0;
  int64_t kv_tokens = 0;         // tokens the sequence held in the KV cache at the end
  double audio_end_seconds = 0;  // audio reflected in this hypothesis
  absl::Time input_time;         // arrival of the chunk / the endpoint that triggered it
  // Finals of ends with return_embeddings that were encoded from features: the segment's projected
  // rows, [num_audio_embeddings][hidden_size] float32 (the decoder dtype's values), and the end's
  // cache_key.
  std::vector<float> audio_embeddings;
  int64_t num_audio_embeddings = 0;
  std::string cache_key;
  absl::Duration compute_time;  // engine time spent on this update or final
  // The oldest input the update takes (its first chunk; the endpoint, or the embedding cache's
  // answer for an end held for it) -> the start of the engine step that began this update or
  // final: time in the engine's inbox and behind other sequences' work (ResultTiming.queue_wait).
  absl::Duration queue_wait;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_TYPES_H_
