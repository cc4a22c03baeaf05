// SessionEvent: what a Session tells its stream, in order: transcript updates (partial or final),
// speech events, warnings and the closing summary. Transport-neutral (server/ turns it into
// protobuf). Created on the session's threads and moved into the ResultSink.
#ifndef SPEECHLLM_STREAMING_SESSION_EVENT_H_
#define SPEECHLLM_STREAMING_SESSION_EVENT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace speechllm::streaming {

struct TranscriptEvent {
  int64_t utterance_id = 0;
  std::string committed_delta;  // appended to everything committed before; never revised
  std::string tentative;        // replaces the previous tentative of this utterance
  float stability = 0;          // committed tokens / hypothesis tokens (1 for finals)
  bool is_final = false;
  bool from_flush = false;
  bool empty_flush = false;  // finals: a Flush with nothing pending, answered without the engine
  // Finals: the text does not start with the committed text sent earlier (API.md 5 "committed-text
  // revisions", which must never happen); committed_delta then holds the whole final text.
  bool revises_committed = false;
  // Finals: the geometric mean of the model's probabilities of the final's tokens (API.md 3); 0
  // for a final without tokens.
  float confidence = 0;
  std::vector<int64_t> token_ids;                              // finals, when requested
  double utterance_start_seconds = 0, result_end_seconds = 0;  // stream offsets
  absl::Duration since_audio_arrival;
  // The utterance's first partial with text: the arrival of its speech onset (VAD start; MANUAL:
  // its first audio) -> now (API.md 5 first-partial latency).
  std::optional<absl::Duration> first_partial_latency;
  // Finals (API.md 5): endpoint_wait runs from the arrival of the utterance's last loud frame to
  // the endpoint decision (trailing silence, Flush, end of input); processing from that decision to
  // the final. Partials: processing is the engine time of the update.
  absl::Duration endpoint_wait, processing;
  // The engine's queue: the arrival of the audio (partials) or the endpoint decision (finals) ->
  // the start of the engine step that began this update; zero for a final without engine work.
  absl::Duration queue_wait;
};

struct LatencySummary {
  absl::Duration p50, p95, max;
};

struct SummaryEvent {
  double audio_total_seconds = 0;
  int64_t utterances = 0;
  int64_t tokens_generated = 0;
  int64_t commit_conflicts = 0;
  int64_t peak_kv_tokens = 0;
  double compute_rtf = 0;
  // first_partial: speech onset -> first partial with text; finalization: API.md 5's total, the
  // last word's arrival -> final (endpoint wait + processing).
  LatencySummary first_partial, finalization;
};

struct SessionEvent {
  enum class Kind { kTranscript, kSpeechEvent, kWarning, kSummary };
  enum class SpeechEventType {
    kSpeechStarted,
    kSpeechEnded,
    kEndOfUtterance,
    kEndOfSingleUtterance,
    kSpeechStartTimeout
  };
  enum class WarningCode {
    kBacklog,
    kFlowControl,
    kAudioClipped,
    kSeqGap,
    kSilenceSuppressed,
    kRepetitionSuppressed,
    kContextNotApplied
  };

  Kind kind = Kind::kTranscript;
  TranscriptEvent transcript;
  SpeechEventType speech_event = SpeechEventType::kEndOfUtterance;
  int64_t utterance_id = 0;
  double event_offset_seconds = 0;
  WarningCode warning = WarningCode::kBacklog;
  std::string message;
  SummaryEvent summary;
  double audio_received_seconds = 0;   // never decreases
  double audio_processed_seconds = 0;  // never decreases
  int64_t commit_conflicts = 0;        // of the stream so far; never decreases
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_SESSION_EVENT_H_
