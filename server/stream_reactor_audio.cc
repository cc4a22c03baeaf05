// The reactor's audio path: AudioChunks through the stream's decoder into the session, the
// decoder's held samples at a Flush, and the end of audio (half-close or EndOfAudio).
#include "server/stream_reactor.h"

#include "absl/strings/str_cat.h"
#include "server/audio_config.h"
#include "server/grpc_status.h"

namespace speechllm::server {

using streaming::SessionEvent;

absl::Status StreamReactor::EndAudio(streaming::Session* s) {
  // The decoder's tail (a resampler's delayed samples) belongs to the audio, then the input ends.
  WarnSeqGaps(/*at_end=*/true);  // a gap still waiting for its warning
  decoder_finished_ = true;
  samples_.clear();
  // No chunk came (every chunk has data): nothing to decode, and a container's decoder would call
  // its missing header an error. A stream without audio ends OK in every encoding (README).
  const bool any_audio = last_seq_.has_value();
  if (absl::Status status = any_audio ? decoder_->Finish(&samples_) : absl::OkStatus();
      !status.ok()) {
    // What was decoded before the error is audio the finals cover (API.md 3, finals first), and
    // audio received like any other.
    if (!samples_.empty()) AcceptSamples(s).IgnoreError();
    return WithReason(status, AudioErrorReason(status));
  }
  if (!samples_.empty()) {
    if (absl::Status status = AcceptSamples(s); !status.ok()) return status;
  }
  if (absl::Status status = s->FinishInput(absl::Now()); !status.ok()) {
    return WithReason(status, "AUDIO_TOO_SHORT");
  }
  return absl::OkStatus();
}

void StreamReactor::WarnSeqGaps(bool at_end) {
  if (seq_gaps_unwarned_ == 0) return;
  const int64_t model_rate = ctx_->log_mel->config().sample_rate_hz;
  if (!at_end && seq_gap_warned_at_samples_ >= 0 &&
      samples_received_ - seq_gap_warned_at_samples_ < model_rate) {
    return;  // within a second of audio of the last warning: this one waits
  }
  SendWarning(SessionEvent::WarningCode::kSeqGap,
              seq_gaps_unwarned_ == 1 ? seq_gap_last_
                                      : absl::StrCat(seq_gap_last_, " (", seq_gaps_unwarned_,
                                                     " gaps since the last SEQ_GAP warning)"));
  seq_gap_warned_at_samples_ = samples_received_;
  seq_gaps_unwarned_ = 0;
}

absl::Status StreamReactor::AcceptSamples(streaming::Session* s) {
  absl::Status accepted = s->AcceptAudio(samples_, absl::Now(), decoder_->HeldSamples());
  if (accepted.ok()) {
    metrics_.Audio(static_cast<double>(samples_.size()) / ctx_->log_mel->config().sample_rate_hz);
  }
  return accepted;
}

absl::Status StreamReactor::DrainDecoder(streaming::Session* s) {
  samples_.clear();
  if (absl::Status status = decoder_->Drain(&samples_); !status.ok()) {
    return WithReason(status, AudioErrorReason(status));
  }
  if (samples_.empty()) return absl::OkStatus();
  return AcceptSamples(s);
}

absl::Status StreamReactor::HandleAudio(const v1::AudioChunk& audio) {
  std::shared_ptr<streaming::Session> s = session();
  if (s == nullptr) {
    return WithReason(
        absl::InvalidArgumentError("audio before the config message; send the config first"),
        "CONFIG_NOT_FIRST");
  }
  if (end_of_audio_) {
    return WithReason(absl::InvalidArgumentError("audio after EndOfAudio"), "AFTER_END_OF_AUDIO");
  }
  if (static_cast<int64_t>(audio.data().size()) > ctx_->config.max_chunk_bytes) {
    metrics_.LimitExceeded(Limit::kMaxChunkBytes);
    return WithField(
        WithReason(absl::InvalidArgumentError(absl::StrCat("AudioChunk of ", audio.data().size(),
                                                           " bytes exceeds max_chunk_bytes ",
                                                           ctx_->config.max_chunk_bytes)),
                   "CHUNK_TOO_LARGE"),
        "audio.data");
  }
  if (audio.data().empty()) {
    return WithField(
        WithReason(absl::InvalidArgumentError("AudioChunk without data"), "AUDIO_DECODE_ERROR"),
        "audio.data");
  }
  // seq 0 is "not set" only while no chunk has had another: a client numbering from 0 sends 0 first
  // (0 then 2 is a gap), one that never numbers sends 0 always.
  const uint64_t seq = audio.seq();
  if (last_seq_.has_value() && (seq != 0 || seq_numbered_) && seq != *last_seq_ + 1) {
    ++seq_gaps_unwarned_;
    seq_gap_last_ = absl::StrCat("AudioChunk.seq ", seq, " after ", *last_seq_);
  }
  WarnSeqGaps(/*at_end=*/false);
  seq_numbered_ |= seq != 0;
  last_seq_ = seq;
  samples_.clear();
  int64_t clipped = 0;
  if (absl::Status status = decoder_->Decode(audio.data(), &samples_, &clipped); !status.ok()) {
    if (streaming::IsAudioTooLongError(status)) {
      metrics_.LimitExceeded(Limit::kMaxChunkBytes);
      return WithField(WithReason(status, "CHUNK_TOO_LARGE"), "audio.data");
    }
    // The samples before the bad one (and the resampler's tail) are audio the finals cover, as
    // in EndAudio (API.md 3, finals first); a refused oversized chunk above gives none.
    if (!samples_.empty()) AcceptSamples(s.get()).IgnoreError();
    return WithReason(status, AudioErrorReason(status));
  }
  if (clipped > 0 && !clipped_warned_) {
    clipped_warned_ = true;
    SendWarning(SessionEvent::WarningCode::kAudioClipped,
                "float samples beyond [-1, 1] were clamped");
  }
  samples_received_ += static_cast<int64_t>(samples_.size());
  return AcceptSamples(s.get());
}

}  // namespace speechllm::server
