// Endpointer: pure rules that turn per-frame VAD decisions into speech events and utterance
// endpoints (API.md 4.4): trailing silence, maximum length, speech-start timeout, per mode. Owned
// by one stream's Session (input half) and called on the gRPC thread that reads that stream; not
// thread-safe. Knows nothing of samples: the session maps frame indices to audio.
#ifndef SPEECHLLM_STREAMING_ENDPOINTER_H_
#define SPEECHLLM_STREAMING_ENDPOINTER_H_

#include <cstdint>

#include "streaming/endpoint_config.h"

namespace speechllm::streaming {

// Frames are counted from the stream's start (frame f covers [f, f + 1) * frame_ms). An utterance
// opens at the first speech frame after Reset(), and reaches back pre_speech_ms before it (never
// before the Reset); in kManual it opens at the first frame after Reset(), speech or not. It ends
// with an endpoint event, after which OnFrame() returns kNone until Reset().
class Endpointer {
 public:
  enum class Event {
    kNone,
    kSpeechStarted,       // VAD onset (the first one after Reset() opens the utterance)
    kSpeechEnded,         // VAD offset; the utterance goes on
    kEndpointSilence,     // trailing silence after speech reached end_silence_ms (not kManual)
    kEndpointMaxLength,   // the utterance reached max_utterance_ms from its first frame
    kSpeechStartTimeout,  // no speech within speech_start_timeout_ms of the stream's start; once
  };
  static const char* EventName(Event event);

  // `config` must be valid (EndpointConfig::Validate()); `frame_ms` is the duration of one VAD
  // frame. Millisecond settings become frames: end_silence and the timeout round up, max length and
  // pre-speech round down (so an utterance never exceeds max_utterance_ms).
  explicit Endpointer(const EndpointConfig& config, int frame_ms = 10);

  // Consumes the next frame's decision. One event per frame; when an endpoint falls on a frame that
  // also changes VAD state, the endpoint is returned (it implies that speech ended). A timeout that
  // falls on an endpoint frame is returned with the next frame (even while ended). `loud` is the
  // frame's own verdict, without the VAD's hangover: trailing silence counts from the last loud
  // frame, so the hangover is part of end_silence_ms, not added to it (the endpoint still waits
  // for the VAD's offset).
  Event OnFrame(bool is_speech, bool loud);
  // For a VAD without hangover: every speech frame is loud.
  Event OnFrame(bool is_speech) { return OnFrame(is_speech, is_speech); }

  // Prepares the next utterance, after an endpoint or a client Flush: the next utterance cannot
  // reach back past this point. In kSingleUtterance, once an endpoint was returned the endpointer
  // stays ended (recognition is over).
  void Reset();

  bool in_utterance() const { return in_utterance_; }
  bool speech_active() const { return speech_active_; }
  // An endpoint was returned and no Reset() re-armed the endpointer.
  bool ended() const { return ended_; }
  // Frames consumed since the stream's start.
  int64_t num_frames() const { return num_frames_; }
  // Stream frame index of the utterance's first frame (pre-speech included); valid in an utterance
  // and after its endpoint, until Reset().
  int64_t utterance_start_frame() const { return utterance_start_frame_; }
  // Frames of the current utterance so far (0 outside one).
  int64_t utterance_frames() const;
  // Frames since the utterance's last loud frame (0 before its first speech).
  int64_t trailing_silence_frames() const { return trailing_silence_frames_; }
  const EndpointConfig& config() const { return config_; }

 private:
  // The utterance rules for one frame (not ended); sets ended_ on an endpoint.
  Event UtteranceEvent(int64_t frame, bool is_speech, bool loud);

  EndpointConfig config_;
  int64_t end_silence_frames_;
  int64_t max_utterance_frames_;
  int64_t timeout_frames_;  // 0: off
  int64_t pre_speech_frames_;

  int64_t num_frames_ = 0;
  int64_t reset_frame_ = 0;   // first frame the current utterance may include
  bool speech_seen_ = false;  // in the whole stream
  bool timeout_fired_ = false;
  bool in_utterance_ = false;
  bool utterance_has_speech_ = false;
  bool speech_active_ = false;
  bool ended_ = false;
  int64_t utterance_start_frame_ = 0;
  int64_t utterance_end_frame_ = 0;  // exclusive; set at the endpoint
  int64_t trailing_silence_frames_ = 0;
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_ENDPOINTER_H_
