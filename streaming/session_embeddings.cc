// Session: precomputed audio embeddings as the whole input (Recognize's AudioEmbeddings, API.md
// 2.2). Input half (the caller's thread).
#include <algorithm>
#include <memory>
#include <utility>

#include "streaming/session.h"

namespace speechllm::streaming {

absl::Status Session::AcceptEmbeddings(std::vector<float> embeddings, int64_t num_tokens,
                                       absl::Time now) {
  if (input_finished_ || segment_open_ || stream_samples_ > 0 || !partial_frame_.empty()) {
    return absl::FailedPreconditionError(
        "audio embeddings are a whole input: the stream already had audio or ended");
  }
  if (absl::Status grown = deps_.engine->ResizeReservation(sequence_id_, num_tokens, 0);
      !grown.ok()) {
    return grown;
  }
  // One audio token per 40 ms: hop, conv stride 2, pooling 2 (MODEL.md 2).
  const engine::ModelConfig& model = deps_.engine->model_config();
  const double seconds = static_cast<double>(num_tokens) * 4.0 * model.features.hop_length /
                         model.features.sample_rate_hz;
  segment_start_sample_ = 0;
  OpenSegment(now);
  segment_open_ = false;
  input_finished_ = true;
  auto end = std::make_unique<engine::SegmentEnd>();
  end->segment_index = next_segment_index_ - 1;
  end->audio_embeddings = std::move(embeddings);
  end->num_audio_embeddings = num_tokens;
  end->tail.segment_index = end->segment_index;
  end->audio_end_seconds = config_.stream_offset_seconds + seconds;
  end->endpoint_time = now;
  {
    absl::MutexLock lock(&mu_);
    audio_received_seconds_ += seconds;
    if (!segments_.empty()) {
      SegmentRecord& record = segments_.back();
      record.closed = true;
      record.speech_confirmed = true;  // no audio for the silence guard to judge
      record.end_seconds = seconds;
      record.endpoint_time = now;
    }
    NoteSubmittedLocked(end->audio_end_seconds);
  }
  absl::Status status = deps_.engine->EndSegment(sequence_id_, std::move(end));
  absl::MutexLock lock(&mu_);
  if (!status.ok()) FinishLocked(status);  // the sink ends the call with it, as CloseSegment does
  input_done_ = true;
  MaybeFinishLocked();
  return absl::OkStatus();
}

}  // namespace speechllm::streaming
