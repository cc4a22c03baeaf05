// SessionEvents and TranscriptEvents of the streaming layer as speechllm.v1 messages (what
// StreamingRecognize and Recognize send back), and durations as google.protobuf.Duration. Pure
// functions; any thread (the reactors and the Recognize call use them).
#ifndef SPEECHLLM_SERVER_EVENT_PROTO_H_
#define SPEECHLLM_SERVER_EVENT_PROTO_H_

#include <string>

#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "speechllm/v1/speechllm.pb.h"
#include "streaming/session_event.h"

namespace speechllm::server {

// What a call's config adds to each of its results: the language they report and whether they
// carry ResultTiming (ResultOptions.timing).
struct ResultExtras {
  std::string language_code;
  bool timing = false;
};
// Applies `extras` to a result ToProto filled (which always fills its timing).
void ApplyResultExtras(const ResultExtras& extras, v1::TranscriptUpdate* update);

// Fills the event part of `response` (not the sequence number).
void ToProto(const streaming::SessionEvent& event, v1::StreamingRecognizeResponse* response);
void ToProto(const streaming::TranscriptEvent& event, v1::TranscriptUpdate* update);

google::protobuf::Duration DurationProto(double seconds);
google::protobuf::Duration DurationProto(absl::Duration duration);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_EVENT_PROTO_H_
