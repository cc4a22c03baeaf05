// EndpointConfig: when a stream's utterances end (API.md 4.4): endpointing mode, trailing-silence
// and maximum-length rules, speech-start timeout and pre-speech padding. Plain data, built from the
// client's StreamingConfig on the gRPC thread, then copied into that stream's Endpointer.
#ifndef SPEECHLLM_STREAMING_ENDPOINT_CONFIG_H_
#define SPEECHLLM_STREAMING_ENDPOINT_CONFIG_H_

#include <string>

#include "absl/status/status.h"

namespace speechllm::streaming {

enum class EndpointMode {
  kContinuous,       // many utterances per stream, each closed by silence or maximum length
  kSingleUtterance,  // the first endpoint ends recognition (the session then drops later audio)
  kManual,           // no silence endpoints: only Flush, max_utterance_ms or end of input
};

const char* EndpointModeName(EndpointMode mode);

// A client-settable field's name and range in ms (API.md 4; the same bounds Validate checks).
struct EndpointFieldRange {
  const char* field;
  int lo, hi;
};
inline constexpr EndpointFieldRange kEndSilenceMsRange{"end_silence_ms", 10, 10000};
inline constexpr EndpointFieldRange kMaxUtteranceMsRange{"max_utterance_ms", 100, 30000};
inline constexpr EndpointFieldRange kSpeechStartTimeoutMsRange{"speech_start_timeout_ms", 0,
                                                               86400000};

struct EndpointConfig {
  EndpointMode mode = EndpointMode::kContinuous;
  // Trailing silence after speech that closes an utterance (not in kManual). [10, 10000].
  int end_silence_ms = 500;
  // Longest utterance, counted from its first frame (pre-speech padding included), so a segment
  // never exceeds it. [100, 30000]: 30 s is the model's audio window.
  int max_utterance_ms = 20000;
  // Ends a stream in which no speech starts within this long of its start; 0 = off. [0, 86400000].
  int speech_start_timeout_ms = 0;
  // Audio kept before the speech onset and added to the utterance. [0, 2000], < max_utterance_ms.
  int pre_speech_ms = 300;

  // INVALID_ARGUMENT naming the field and its range.
  absl::Status Validate() const;
  std::string ToString() const;
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_ENDPOINT_CONFIG_H_
