// Conversions between the speechllm.v1 protobuf messages and the streaming layer: the client's
// SessionConfig validated and resolved against the server's defaults (INVALID_ARGUMENT with a field
// path and reason), SessionEvents as StreamingRecognizeResponses, limits and durations. Pure
// functions; any thread.
#ifndef SPEECHLLM_SERVER_PROTO_CONVERT_H_
#define SPEECHLLM_SERVER_PROTO_CONVERT_H_

#include "absl/status/statusor.h"
#include "google/protobuf/duration.pb.h"
#include "server/prompt_source.h"
#include "server/server_config.h"
#include "speechllm/v1/speechllm.pb.h"
#include "streaming/audio_decoder.h"
#include "streaming/session_config.h"
#include "streaming/session_event.h"

namespace speechllm::server {

struct StreamSetup {
  streaming::SessionConfig session;
  streaming::AudioFormatSpec audio;
  bool audio_is_wav = false;    // Recognize: a WAV file (declared or sniffed)
  v1::SessionConfig effective;  // what SessionStarted echoes, defaults filled in
};

// Validates `config` completely before any work (API.md 2.1). `for_recognize` allows containers
// (WAV, or ENCODING_UNSPECIFIED sniffed from `audio_bytes`) and turns interim results off.
absl::StatusOr<StreamSetup> ConvertConfig(const v1::SessionConfig& config,
                                          const ServerConfig& server, const PromptSource& prompt,
                                          bool for_recognize, absl::string_view audio_bytes = {});

// The prompt for a stream with `context` (limits checked; `field` names it in errors, e.g.
// "config.context"). INVALID_ARGUMENT (FEATURE_UNAVAILABLE) when the server's prompt takes no
// context.
absl::StatusOr<streaming::PromptConfig> PromptFromContext(const v1::RecognitionContext& context,
                                                          const ServerConfig& server,
                                                          const PromptSource& prompt,
                                                          const std::string& field);

// Fills the event part of `response` (not the sequence number).
void ToProto(const streaming::SessionEvent& event, v1::StreamingRecognizeResponse* response);
void ToProto(const streaming::TranscriptEvent& event, v1::TranscriptUpdate* update);

v1::Limits LimitsProto(const ServerConfig& server);
google::protobuf::Duration DurationProto(double seconds);
google::protobuf::Duration DurationProto(absl::Duration duration);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_PROTO_CONVERT_H_
