// Session: starting utterances, and the committed text carried from one utterance into the next
// one's prompt (SessionConfig::carry_context_chars, API.md 4.5). Runs with the session's mutex
// held, on the reader thread (an utterance opens) or the dispatcher thread (a final arrives).
#include <algorithm>
#include <utility>

#include "streaming/carried_text.h"
#include "streaming/session.h"

namespace speechllm::streaming {

void Session::StartSegmentLocked(SegmentRecord* record) {
  record->start_waiting = false;
  const PromptConfig& prompt = record->prompt;
  std::vector<int64_t> suffix = prompt.suffix_ids;
  if (config_.carry_context_chars > 0 && !carried_text_.empty() &&
      prompt.suffix_with_previous_text) {
    absl::StatusOr<std::vector<int64_t>> carried = prompt.suffix_with_previous_text(carried_text_);
    // Without a prompt or the KV room for it, the utterance goes without the earlier text.
    if (carried.ok() &&
        deps_.engine->ResizeReservation(sequence_id_, 0, static_cast<int64_t>(carried->size()))
            .ok()) {
      suffix = *std::move(carried);
    }
  }
  absl::Status started = deps_.engine->StartSegment(
      sequence_id_, engine::SegmentStart{record->index, prompt.prefix_ids, std::move(suffix)});
  if (!started.ok()) FinishLocked(started);
}

void Session::CarryTextLocked(const std::string& text) {
  carried_text_ =
      AppendCarriedText(carried_text_, text, static_cast<size_t>(config_.carry_context_chars));
}

void Session::StartWaitingSegmentLocked() {
  auto next = std::find_if(segments_.begin(), segments_.end(),
                           [](const SegmentRecord& r) { return !r.empty; });
  if (next != segments_.end() && next->start_waiting) StartSegmentLocked(&*next);
}

}  // namespace speechllm::streaming
