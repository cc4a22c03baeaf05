// Conversions from the speechllm.v1 protobuf messages to the streaming layer: the client's
// SessionConfig validated and resolved against the server's defaults (INVALID_ARGUMENT with a field
// path and reason), the prompt context, and the server's limits (events go the other way in
// event_proto.h). Pure functions; any thread.
#ifndef SPEECHLLM_SERVER_PROTO_CONVERT_H_
#define SPEECHLLM_SERVER_PROTO_CONVERT_H_

#include "absl/status/statusor.h"
#include "server/event_proto.h"
#include "server/prompt_source.h"
#include "server/server_config.h"
#include "speechllm/v1/speechllm.pb.h"
#include "streaming/audio_decoder.h"
#include "streaming/session_config.h"

namespace speechllm::server {

// Rates of raw PCM and G.711 the server accepts (resampled to the model's rate).
inline constexpr int kMinSampleRateHz = 8000;
inline constexpr int kMaxSampleRateHz = 48000;

struct StreamSetup {
  streaming::SessionConfig session;
  streaming::AudioFormatSpec audio;  // containers: the declared rate and channels (0 = any)
  v1::AudioFormat::Encoding encoding = v1::AudioFormat::ENCODING_UNSPECIFIED;  // after sniffing
  ResultExtras result_extras;   // the language results report (ResolveLanguage), timing or not
  v1::SessionConfig effective;  // what SessionStarted echoes, defaults filled in
};

// Validates `config` completely before any work (API.md 2.1). `for_recognize` sniffs
// ENCODING_UNSPECIFIED from `audio_bytes` ("RIFF" = WAV, "OggS" = OGG_OPUS, 1A 45 DF A3 =
// WEBM_OPUS, "fLaC" or "ID3" = FLAC) and turns interim results and the speech-start timeout off;
// a stream's ENCODING_UNSPECIFIED is sniffed by its decoder from the first audio bytes (kSniffed:
// the same four; rate 0 or 8000 to 192000, channels 0 to 8). Audio rules
// (UNSUPPORTED_ENCODING or BAD_CONFIG with the field otherwise):
//  - PCM_S16LE, PCM_F32LE: sample_rate_hz required, 8000 to 48000; channels 0 (= 1) to 8.
//  - MULAW, ALAW: sample_rate_hz 0 = 8000, else 8000 to 48000; channels 0 (= 1) to 8.
//  - OGG_OPUS, WEBM_OPUS: sample_rate_hz 0 or 8000 to 48000 and channels 0 to 8, both optional
//    (0 = from the OpusHead); a declared rate must be 48000 or the OpusHead's input rate.
//  - FLAC: sample_rate_hz 0 or 8000 to 192000, channels 0 to 8; declared values must match
//    STREAMINFO.
//  - WAV: the header's rate and channels are used; declared non-zero values must match the
//    header (Recognize reads the file whole, streams parse it as it comes: WavStreamDecoder).
//  - OPUS (StreamingRecognize only): raw packets, one per AudioChunk.
// Other rates than the model's are resampled with the one libsoxr setting (streaming/resampler.h).
absl::StatusOr<StreamSetup> ConvertConfig(const v1::SessionConfig& config,
                                          const ServerConfig& server, const PromptSource& prompt,
                                          bool for_recognize, absl::string_view audio_bytes = {});

// INVALID_ARGUMENT "config.FIELD: message" with the ErrorInfo `reason` and the field path
// "config.FIELD" (FIELD: e.g. "audio.sample_rate_hz").
absl::Status BadConfig(const std::string& field, const std::string& message,
                       const std::string& reason = "BAD_CONFIG");

// The prompt for a stream of `language` (ResolveLanguage's; "{language}" in the instruction) with
// `context` (limits checked; `field` names it in errors, e.g. "config.context").
// INVALID_ARGUMENT (FEATURE_UNAVAILABLE) when the server's prompt takes no context.
absl::StatusOr<streaming::PromptConfig> PromptFromContext(const v1::RecognitionContext& context,
                                                          const ServerConfig& server,
                                                          const PromptSource& prompt,
                                                          const std::string& language,
                                                          const std::string& field);

v1::Limits LimitsProto(const ServerConfig& server);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_PROTO_CONVERT_H_
