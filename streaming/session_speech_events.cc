// Session: SpeechEvents from the endpointer (API.md 4.4), each SPEECH_STARTED paired with one
// SPEECH_ENDED even where an endpoint, a Flush or a max-length cut ends the utterance on the frame
// the VAD's offset would have come, or before it. Input half (the stream's reader thread).
#include <utility>

#include "streaming/session.h"

namespace speechllm::streaming {

void Session::SendSpeechEvent(Endpointer::Event event) {
  SessionEvent e;
  e.kind = SessionEvent::Kind::kSpeechEvent;
  if (event == Endpointer::Event::kSpeechStarted && config_.voice_activity_events) {
    e.speech_event = SessionEvent::SpeechEventType::kSpeechStarted;
    speech_event_open_ = true;
  } else if (event == Endpointer::Event::kSpeechEnded && speech_event_open_) {
    e.speech_event = SessionEvent::SpeechEventType::kSpeechEnded;
    speech_event_open_ = false;
  } else if (event == Endpointer::Event::kSpeechStartTimeout) {
    e.speech_event = SessionEvent::SpeechEventType::kSpeechStartTimeout;
  } else {
    return;
  }
  e.utterance_id = segment_open_ ? next_segment_index_ - 1 : next_segment_index_;
  e.event_offset_seconds = config_.stream_offset_seconds + SecondsOf(stream_samples_);
  absl::MutexLock lock(&mu_);
  SendLocked(std::move(e));
}

void Session::EndOpenSpeechEvent() {
  if (speech_event_open_) SendSpeechEvent(Endpointer::Event::kSpeechEnded);
}

}  // namespace speechllm::streaming
