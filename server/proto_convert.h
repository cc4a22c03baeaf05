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

// Rates of raw PCM and G.711 the server accepts (resampled to the model's rate).
inline constexpr int kMinSampleRateHz = 8000;
inline constexpr int kMaxSampleRateHz = 48000;

struct StreamSetup {
  streaming::SessionConfig session;
  streaming::AudioFormatSpec audio;  // for WAV: the declared rate and channels (0 = any)
  bool audio_is_wav = false;         // Recognize: a WAV file (declared or sniffed)
  v1::AudioFormat::Encoding encoding = v1::AudioFormat::ENCODING_UNSPECIFIED;  // after sniffing
  v1::SessionConfig effective;  // what SessionStarted echoes, defaults filled in
};

// Validates `config` completely before any work (API.md 2.1). `for_recognize` allows WAV, sniffs
// ENCODING_UNSPECIFIED from `audio_bytes` ("RIFF" = WAV, "OggS" = OGG_OPUS) and turns interim
// results off. Audio rules (UNSUPPORTED_ENCODING or BAD_CONFIG with the field otherwise):
//  - PCM_S16LE, PCM_F32LE: sample_rate_hz required, 8000 to 48000; channels 0 (= 1) to 8.
//  - MULAW, ALAW: sample_rate_hz 0 = 8000, else 8000 to 48000; channels 0 (= 1) to 8.
//  - OGG_OPUS: sample_rate_hz 0 or 8000 to 48000 and channels 0 to 8, both optional (0 = from
//    the OpusHead); a declared rate must be 48000 or the OpusHead's input rate.
//  - WAV (Recognize only): the header's rate and channels are used; declared non-zero values
//    must match the header.
//  - WEBM_OPUS, FLAC: not supported.
// Other rates than the model's are resampled with the one libsoxr setting (streaming/resampler.h).
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
