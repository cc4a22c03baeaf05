#include "streaming/endpointer.h"

#include <algorithm>

namespace speechllm::streaming {
namespace {

int64_t CeilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

const char* Endpointer::EventName(Event event) {
  switch (event) {
    case Event::kNone:
      return "NONE";
    case Event::kSpeechStarted:
      return "SPEECH_STARTED";
    case Event::kSpeechEnded:
      return "SPEECH_ENDED";
    case Event::kEndpointSilence:
      return "ENDPOINT_SILENCE";
    case Event::kEndpointMaxLength:
      return "ENDPOINT_MAX_LENGTH";
    case Event::kSpeechStartTimeout:
      return "SPEECH_START_TIMEOUT";
  }
  return "UNKNOWN";
}

Endpointer::Endpointer(const EndpointConfig& config, int frame_ms)
    : config_(config),
      end_silence_frames_(std::max<int64_t>(1, CeilDiv(config.end_silence_ms, frame_ms))),
      max_utterance_frames_(std::max<int64_t>(1, config.max_utterance_ms / frame_ms)),
      timeout_frames_(CeilDiv(config.speech_start_timeout_ms, frame_ms)),
      // At most the longest utterance less two frames: the onset reports SPEECH_STARTED inside
      // the limit, and the cut comes after it.
      pre_speech_frames_(std::clamp<int64_t>(config.pre_speech_ms / frame_ms, 0,
                                             std::max<int64_t>(0, max_utterance_frames_ - 2))) {}

int64_t Endpointer::utterance_frames() const {
  if (ended_) return utterance_end_frame_ - utterance_start_frame_;
  return in_utterance_ ? num_frames_ - utterance_start_frame_ : 0;
}

void Endpointer::Reset() {
  if (ended_ && config_.mode == EndpointMode::kSingleUtterance) return;
  reset_frame_ = num_frames_;
  in_utterance_ = false;
  utterance_has_speech_ = false;
  speech_active_ = false;
  ended_ = false;
  utterance_start_frame_ = num_frames_;
  utterance_end_frame_ = num_frames_;
  trailing_silence_frames_ = 0;
}

Endpointer::Event Endpointer::OnFrame(bool is_speech, bool loud) {
  const int64_t frame = num_frames_++;
  Event event = ended_ ? Event::kNone : UtteranceEvent(frame, is_speech, loud);
  if (event == Event::kEndpointSilence || event == Event::kEndpointMaxLength) return event;
  if (event == Event::kNone && timeout_frames_ > 0 && !speech_seen_ && !timeout_fired_ &&
      num_frames_ >= timeout_frames_) {
    timeout_fired_ = true;
    event = Event::kSpeechStartTimeout;
  }
  return event;
}

Endpointer::Event Endpointer::UtteranceEvent(int64_t frame, bool is_speech, bool loud) {
  Event event = Event::kNone;
  if (config_.mode == EndpointMode::kManual && !in_utterance_) {
    in_utterance_ = true;
    utterance_start_frame_ = frame;
  }
  // Speech starts on a loud frame only: after a Flush or a max-length cut (Reset) the VAD can
  // still be in its hangover, whose quiet frames would otherwise open an utterance of silence.
  if (is_speech && (speech_active_ || loud)) {
    if (!speech_active_) {
      speech_active_ = true;
      event = Event::kSpeechStarted;
      if (!in_utterance_) {
        in_utterance_ = true;
        utterance_start_frame_ = std::max(frame - pre_speech_frames_, reset_frame_);
      }
    }
    // A hangover frame (speech, not loud) already counts as trailing silence.
    trailing_silence_frames_ =
        (loud || event == Event::kSpeechStarted) ? 0 : trailing_silence_frames_ + 1;
    speech_seen_ = true;
    utterance_has_speech_ = true;
  } else if (speech_active_) {
    speech_active_ = false;
    ++trailing_silence_frames_;
    event = Event::kSpeechEnded;
  } else if (utterance_has_speech_) {
    ++trailing_silence_frames_;
  }
  if (!in_utterance_) return event;

  // Silence counts from the last loud frame, the VAD's hangover included, so an end_silence_ms
  // shorter than the hangover ends the utterance before the VAD's offset (Session then sends the
  // SPEECH_ENDED the offset would have).
  if (config_.mode != EndpointMode::kManual && utterance_has_speech_ &&
      trailing_silence_frames_ >= end_silence_frames_) {
    event = Event::kEndpointSilence;
  } else if (frame + 1 - utterance_start_frame_ >= max_utterance_frames_) {
    event = Event::kEndpointMaxLength;
  } else {
    return event;
  }
  ended_ = true;
  utterance_end_frame_ = frame + 1;
  return event;
}

}  // namespace speechllm::streaming
