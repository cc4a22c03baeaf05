#include "streaming/endpoint_config.h"

#include "absl/strings/str_cat.h"

namespace speechllm::streaming {
namespace {

absl::Status CheckRange(const char* field, int value, int lo, int hi) {
  if (value >= lo && value <= hi) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("EndpointConfig.", field, " must be in [", lo, ", ", hi, "], got ", value));
}

absl::Status CheckRange(const EndpointFieldRange& range, int value) {
  return CheckRange(range.field, value, range.lo, range.hi);
}

}  // namespace

const char* EndpointModeName(EndpointMode mode) {
  switch (mode) {
    case EndpointMode::kContinuous:
      return "CONTINUOUS";
    case EndpointMode::kSingleUtterance:
      return "SINGLE_UTTERANCE";
    case EndpointMode::kManual:
      return "MANUAL";
  }
  return "UNKNOWN";
}

absl::Status EndpointConfig::Validate() const {
  if (mode != EndpointMode::kContinuous && mode != EndpointMode::kSingleUtterance &&
      mode != EndpointMode::kManual) {
    return absl::InvalidArgumentError(
        absl::StrCat("EndpointConfig.mode must be CONTINUOUS, SINGLE_UTTERANCE or MANUAL, got ",
                     static_cast<int>(mode)));
  }
  // max_utterance_ms: at most the model's 30 s audio window (MODEL.md 1.4).
  absl::Status status = CheckRange(kEndSilenceMsRange, end_silence_ms);
  if (status.ok()) status = CheckRange(kMaxUtteranceMsRange, max_utterance_ms);
  if (status.ok()) status = CheckRange(kSpeechStartTimeoutMsRange, speech_start_timeout_ms);
  // A pre_speech_ms as long as max_utterance_ms is not refused: the endpointer shortens the
  // padding to leave the utterance at least one frame of its own (Endpointer's constructor).
  if (status.ok()) status = CheckRange("pre_speech_ms", pre_speech_ms, 0, 2000);
  return status;
}

std::string EndpointConfig::ToString() const {
  return absl::StrCat("mode=", EndpointModeName(mode), " end_silence_ms=", end_silence_ms,
                      " max_utterance_ms=", max_utterance_ms,
                      " speech_start_timeout_ms=", speech_start_timeout_ms,
                      " pre_speech_ms=", pre_speech_ms);
}

}  // namespace speechllm::streaming
