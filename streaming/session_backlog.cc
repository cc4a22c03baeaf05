// Session: the backlog, audio handed to the engine whose results are still owed. It pauses reading
// past max_buffered_audio_ms (flow control) and sends Warning{BACKLOG} past 2 s (API.md 2.1).
#include <algorithm>

#include "absl/strings/str_format.h"
#include "streaming/session.h"

namespace speechllm::streaming {
namespace {

// API.md 2.1: BACKLOG when results lag the audio by more than 2 s. The warning re-arms once the
// lag has fallen to half of that, so that a lag hovering at 2 s does not send one per chunk.
constexpr double kBacklogWarningSeconds = 2.0;
constexpr double kBacklogRearmSeconds = kBacklogWarningSeconds / 2;

}  // namespace

bool Session::ShouldPauseReading() {
  absl::MutexLock lock(&mu_);
  reader_paused_ = BacklogExceededLocked();
  return reader_paused_;
}

double Session::UnansweredSecondsLocked() const {
  // Silence between utterances never reaches the engine: the backlog counts from the utterance
  // submitted while nothing was outstanding, not from the last output before it.
  const double reflected = std::max(audio_processed_seconds_, backlog_origin_seconds_);
  return std::max(0.0, audio_submitted_seconds_ - reflected);
}

bool Session::BacklogExceededLocked() const {
  return UnansweredSecondsLocked() * 1000.0 > config_.max_buffered_audio_ms;
}

void Session::NoteSubmittedLocked(double audio_end_seconds) {
  // What was owed before this submission: the new chunk (up to chunk_ms, or a whole utterance
  // with exact finals and no partials) cannot have been answered yet and is no lag.
  const double owed_seconds = UnansweredSecondsLocked();
  audio_submitted_seconds_ = std::max(audio_submitted_seconds_, audio_end_seconds);
  if (backlog_warned_ || owed_seconds <= kBacklogWarningSeconds) return;
  backlog_warned_ = true;
  SessionEvent event;
  event.kind = SessionEvent::Kind::kWarning;
  event.warning = SessionEvent::WarningCode::kBacklog;
  event.message = absl::StrFormat(
      "results lag the audio: %.1f s of audio handed to the model earlier is not answered yet "
      "(the server is behind; results come late until it catches up)",
      owed_seconds);
  SendLocked(std::move(event));
}

void Session::RearmBacklogWarningLocked() {
  if (backlog_warned_ && UnansweredSecondsLocked() <= kBacklogRearmSeconds) backlog_warned_ = false;
}

}  // namespace speechllm::streaming
