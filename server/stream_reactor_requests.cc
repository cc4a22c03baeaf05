// The reactor's request messages other than audio: which kind a message is, the config that opens
// the stream's session, and the controls (Flush, KeepAlive, context, EndOfAudio). Run by
// OnReadDone on the gRPC reader, under input_mu_.
#include "server/stream_reactor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/call_session.h"
#include "server/event_proto.h"
#include "server/grpc_status.h"
#include "server/proto_convert.h"

namespace speechllm::server {

using streaming::SessionEvent;

absl::Status StreamReactor::HandleRequest() {
  switch (request_.event_case()) {
    case v1::StreamingRecognizeRequest::kConfig:
      return HandleConfig(request_.config());
    case v1::StreamingRecognizeRequest::kAudio:
      return HandleAudio(request_.audio());
    case v1::StreamingRecognizeRequest::kControl:
      return HandleControl(request_.control());
    default:
      return WithReason(absl::InvalidArgumentError("empty StreamingRecognizeRequest"),
                        "CONFIG_NOT_FIRST");
  }
}

absl::Status StreamReactor::HandleConfig(const v1::SessionConfig& config) {
  if (session() != nullptr) {
    return WithReason(
        absl::InvalidArgumentError("a second config message; the config comes once, first"),
        "CONFIG_REPEATED");
  }
  auto setup = ConvertConfig(config, ctx_->config, *ctx_->prompt, /*for_recognize=*/false);
  if (!setup.ok()) return setup.status();
  auto decoder =
      streaming::AudioDecoder::Create(setup->audio, ctx_->log_mel->config().sample_rate_hz);
  if (!decoder.ok())
    return WithField(WithReason(decoder.status(), "UNSUPPORTED_ENCODING"), "config.audio");
  decoder_ = std::move(decoder).value();
  {
    absl::MutexLock lock(&mu_);  // before the session can send anything
    result_extras_ = setup->result_extras;
  }
  decoder_->LimitSamplesPerDecode(static_cast<int64_t>(ServerConfig::kMaxChunkAudioSeconds) *
                                  ctx_->log_mel->config().sample_rate_hz);
  auto session = OpenCallSession(*ctx_, setup->session, this, metrics_);
  if (!session.ok()) return session.status();
  metrics_.SetStreamOffset(setup->session.stream_offset_seconds);
  v1::StreamingRecognizeResponse started;
  auto* s = started.mutable_started();
  s->set_session_id(
      absl::StrCat("s", ctx_->session_counter.fetch_add(1) + 1, "-", (*session)->sequence_id()));
  *s->mutable_effective_config() = setup->effective;
  // No audio yet: received and processed are the stream's offset (API.md 2.1).
  *started.mutable_audio_received() = DurationProto(setup->session.stream_offset_seconds);
  *started.mutable_audio_processed() = DurationProto(setup->session.stream_offset_seconds);
  *s->mutable_limits() = LimitsProto(ctx_->config);
  absl::MutexLock lock(&mu_);
  session_ = *session;
  EnqueueLocked(std::move(started), false);
  return absl::OkStatus();
}

absl::Status StreamReactor::HandleControl(const v1::Control& control) {
  std::shared_ptr<streaming::Session> s = session();
  if (s == nullptr) {
    return WithReason(absl::InvalidArgumentError("control before the config message"),
                      "CONFIG_NOT_FIRST");
  }
  switch (control.action_case()) {
    case v1::Control::kFlush:
      if (end_of_audio_)
        return WithReason(absl::InvalidArgumentError("Flush after EndOfAudio"),
                          "AFTER_END_OF_AUDIO");
      // Everything received before the Flush is finalized (API.md 2.1), the resampler's delayed
      // samples included.
      if (absl::Status status = DrainDecoder(s.get()); !status.ok()) return status;
      return s->Flush(absl::Now());
    case v1::Control::kKeepAlive:
      return absl::OkStatus();  // the registry saw the activity
    case v1::Control::kContext: {
      // Applies from the next utterance on; the running one keeps its prompt (API.md 2.1).
      std::string language;
      {
        absl::MutexLock lock(&mu_);
        language = result_extras_.language_code;
      }
      auto prompt = PromptFromContext(control.context(), ctx_->config, *ctx_->prompt, language,
                                      "control.context");
      if (!prompt.ok()) return prompt.status();
      // A context that does not fit the KV cache is a warning, not an error
      // (Session::UpdatePrompt).
      return s->UpdatePrompt(*std::move(prompt));
    }
    case v1::Control::kEndOfAudio: {
      if (end_of_audio_) return absl::OkStatus();
      end_of_audio_ = true;
      ctx_->registry->InputEnded(registry_id_);  // it waits for the finals: not idle
      return EndAudio(s.get());
    }
    default:
      return WithReason(absl::InvalidArgumentError("empty Control message"), "BAD_CONFIG");
  }
}

}  // namespace speechllm::server
