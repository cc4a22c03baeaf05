// Session: SpeechEvents from the endpointer (API.md 4.4), each SPEECH_STARTED paired with one
// SPEECH_ENDED even where an endpoint, a Flush or a max-length cut ends the utterance on the frame
// the VAD's offset would have come, or before it. Input half (the stream's reader thread).
#include <algorithm>
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
  // Speech boundaries, not the moments they were decided: STARTED at the start of the loud frame
  // that opened speech (stream_samples_ already counts it), ENDED at the end of the last loud
  // frame, before the VAD's hangover (the endpointer's silence counts from there too). Both were
  // the current position: one frame late, and the hangover plus a frame late.
  int64_t at_samples = stream_samples_;
  if (e.speech_event == SessionEvent::SpeechEventType::kSpeechStarted) {
    at_samples = std::max<int64_t>(0, stream_samples_ - voice_activity_.frame_samples());
  } else if (e.speech_event == SessionEvent::SpeechEventType::kSpeechEnded) {
    at_samples = std::min(stream_samples_, last_loud_end_sample_);
  }
  e.event_offset_seconds = config_.stream_offset_seconds + SecondsOf(at_samples);
  absl::MutexLock lock(&mu_);
  SendLocked(std::move(e));
}

void Session::EndOpenSpeechEvent() {
  if (speech_event_open_) SendSpeechEvent(Endpointer::Event::kSpeechEnded);
}

}  // namespace speechllm::streaming
