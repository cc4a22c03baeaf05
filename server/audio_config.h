// ConvertAudio: the audio part of a client's SessionConfig (API.md 2.1, AudioFormat) checked and
// turned into the streaming decoder's AudioFormatSpec, with Recognize's container sniffing. Part of
// ConvertConfig (proto_convert.h), whose comment lists the rules per encoding. Pure; any thread.
#ifndef SPEECHLLM_SERVER_AUDIO_CONFIG_H_
#define SPEECHLLM_SERVER_AUDIO_CONFIG_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/proto_convert.h"

namespace speechllm::server {

// Fills setup->audio and encoding from `audio` (and, for Recognize with
// ENCODING_UNSPECIFIED, from the first bytes of `audio_bytes`). INVALID_ARGUMENT with the field
// and reason (BAD_CONFIG, UNSUPPORTED_ENCODING) otherwise.
absl::Status ConvertAudio(const v1::AudioFormat& audio, bool for_recognize,
                          absl::string_view audio_bytes, StreamSetup* setup);

// The ErrorInfo reason of an audio decoder's error: NON_FINITE_AUDIO (NaN/Inf samples),
// UNSUPPORTED_ENCODING (a rate, format or codec the decoders do not take) or AUDIO_DECODE_ERROR.
const char* AudioErrorReason(const absl::Status& status);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_AUDIO_CONFIG_H_
