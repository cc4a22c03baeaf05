#include "server/recognize_call.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "proto/grpc_handoff.h"
#include "server/audio_config.h"
#include "server/audio_embeddings.h"
#include "server/call_session.h"
#include "server/event_proto.h"
#include "server/grpc_status.h"
#include "server/proto_convert.h"
#include "streaming/audio_decoder.h"

namespace speechllm::server {

namespace {

// A decoder's error: a config.audio field the file contradicts (Recognize has both at once) is
// BAD_CONFIG on that field; the rest as AudioErrorReason says.
absl::Status AudioError(const absl::Status& status) {
  if (const std::string field = streaming::DeclaredFormatField(status); !field.empty()) {
    return WithField(WithReason(status, "BAD_CONFIG"), absl::StrCat("config.audio.", field));
  }
  return WithField(WithReason(status, AudioErrorReason(status)), "audio");
}

// Raw PCM, G.711, Ogg Opus, WebM Opus, FLAC or WAV bytes decoded in one call by the streams'
// decoders (a WAV as streamed: the same samples, limits and errors), stopping once they pass
// `max_samples` (an AudioTooLongError: Opus can expand a few MiB to hours of samples).
absl::StatusOr<std::vector<float>> DecodeAudio(absl::string_view bytes,
                                               const streaming::AudioFormatSpec& format,
                                               int model_rate, int64_t max_samples) {
  auto decoder = streaming::AudioDecoder::Create(format, model_rate);
  if (!decoder.ok()) {
    return WithField(WithReason(decoder.status(), "UNSUPPORTED_ENCODING"), "config.audio");
  }
  (*decoder)->LimitSamplesPerDecode(max_samples);
  std::vector<float> samples;
  if (absl::Status s = (*decoder)->Decode(bytes, &samples, nullptr); !s.ok()) return AudioError(s);
  if (absl::Status s = (*decoder)->Finish(&samples); !s.ok()) return AudioError(s);
  return samples;
}

}  // namespace

RecognizeCall::RecognizeCall(ServiceContext* context, grpc::CallbackServerContext* call_context,
                             v1::RecognizeResponse* response)
    : ctx_(context),
      call_context_(call_context),
      response_(response),
      metrics_(context->metrics, RpcMethod::kRecognize),
      start_time_(absl::Now()) {}

RecognizeCall* RecognizeCall::Start(ServiceContext* context,
                                    grpc::CallbackServerContext* call_context,
                                    const v1::RecognizeRequest* request,
                                    v1::RecognizeResponse* response) {
  std::shared_ptr<RecognizeCall> call(new RecognizeCall(context, call_context, response));
  call->self_ = call;
  auto id = context->registry->Add(call, /*idle_timeout=*/false);
  if (!id.ok()) {
    call->metrics_.Rejected(id.status().code() == absl::StatusCode::kUnavailable
                                ? AdmissionReason::kDraining
                                : AdmissionReason::kMaxStreams);
    call->Finish(id.status());
    return call.get();
  }
  call->registry_id_ = *id;
  call->metrics_.Admitted();
  absl::Status size = context->config.CheckMessageSize(request->ByteSizeLong());
  if (!size.ok()) call->metrics_.LimitExceeded(Limit::kMaxReceiveMessageBytes);
  if (absl::Status status = size.ok() ? call->Run(*request) : size; !status.ok()) {
    call->Finish(status);
  }
  return call.get();
}

absl::Status RecognizeCall::Run(const v1::RecognizeRequest& request) {
  if (request.input_case() == v1::RecognizeRequest::kEmbeddings) return RunEmbeddings(request);
  const std::string& bytes = request.audio();
  if (bytes.empty())
    return WithField(WithReason(absl::InvalidArgumentError("no audio"), "AUDIO_DECODE_ERROR"),
                     "audio");
  auto setup =
      ConvertConfig(request.config(), ctx_->config, *ctx_->prompt, /*for_recognize=*/true, bytes);
  if (!setup.ok()) return setup.status();
  const int model_rate = ctx_->log_mel->config().sample_rate_hz;
  // One sample past the limit is enough to refuse; more is never decoded.
  const int64_t max_samples =
      static_cast<int64_t>(absl::ToDoubleSeconds(ctx_->config.max_recognize_audio) * model_rate) +
      1;
  absl::StatusOr<std::vector<float>> decoded =
      DecodeAudio(bytes, setup->audio, model_rate, max_samples);
  if (streaming::IsAudioTooLongError(decoded.status())) {
    metrics_.LimitExceeded(Limit::kMaxRecognizeAudio);
    return WithReason(
        absl::InvalidArgumentError(absl::StrCat(
            "the audio decodes to more than max_recognize_audio ",
            absl::FormatDuration(ctx_->config.max_recognize_audio), ": stream it instead")),
        "AUDIO_TOO_LONG");
  }
  if (!decoded.ok()) return decoded.status();
  std::vector<float> samples = *std::move(decoded);
  audio_seconds_ = static_cast<double>(samples.size()) / model_rate;
  if (samples.empty())
    return WithField(
        WithReason(absl::InvalidArgumentError("no audio samples"), "AUDIO_DECODE_ERROR"), "audio");
  if (audio_seconds_ > absl::ToDoubleSeconds(ctx_->config.max_recognize_audio)) {
    metrics_.LimitExceeded(Limit::kMaxRecognizeAudio);
    return WithReason(
        absl::InvalidArgumentError(absl::StrCat(
            audio_seconds_, " s of audio exceeds max_recognize_audio ",
            absl::FormatDuration(ctx_->config.max_recognize_audio), ": stream it instead")),
        "AUDIO_TOO_LONG");
  }
  SetResultExtras(setup->result_extras);
  auto session = OpenCallSession(*ctx_, setup->session, this, metrics_);
  if (!session.ok()) return session.status();
  {
    absl::MutexLock lock(&mu_);
    session_ = *session;
  }
  if (absl::Status s = (*session)->AcceptAudio(samples, absl::Now()); !s.ok()) return s;
  metrics_.Audio(audio_seconds_);
  if (absl::Status s = (*session)->FinishInput(absl::Now()); !s.ok())
    return WithReason(s, "AUDIO_TOO_SHORT");
  return absl::OkStatus();
}

absl::Status RecognizeCall::RunEmbeddings(const v1::RecognizeRequest& request) {
  const engine::ModelConfig& model = ctx_->engine->model_config();
  auto embeddings =
      ParseAudioEmbeddings(request.embeddings(), model.text.hidden_size,
                           std::min<int64_t>(ctx_->config.max_embedding_tokens,
                                             ctx_->engine->config().max_audio_tokens_per_segment));
  if (!embeddings.ok()) return embeddings.status();
  // config.audio is ignored (API.md 2.2): the format check gets a WAV stand-in.
  v1::SessionConfig config = request.config();
  config.clear_audio();
  config.mutable_audio()->set_encoding(v1::AudioFormat::WAV);
  auto setup = ConvertConfig(config, ctx_->config, *ctx_->prompt, /*for_recognize=*/true, "");
  if (!setup.ok()) return setup.status();
  audio_seconds_ = static_cast<double>(embeddings->num_tokens) * 4.0 * model.features.hop_length /
                   model.features.sample_rate_hz;
  SetResultExtras(setup->result_extras);
  auto session = OpenCallSession(*ctx_, setup->session, this, metrics_);
  if (!session.ok()) return session.status();
  {
    absl::MutexLock lock(&mu_);
    session_ = *session;
  }
  const int64_t num_tokens = embeddings->num_tokens;
  if (absl::Status s =
          (*session)->AcceptEmbeddings(std::move(embeddings->values), num_tokens, absl::Now());
      !s.ok()) {
    // More rows than the stream reserved may not fit the KV cache now: retry later (API.md 4.6).
    return KvBudgetRefusal(*ctx_, s, metrics_);
  }
  metrics_.Audio(audio_seconds_);
  return absl::OkStatus();
}

void RecognizeCall::SetResultExtras(const ResultExtras& extras) {
  absl::MutexLock lock(&mu_);
  result_extras_ = extras;
  if (!finished_) response_->set_language_code(extras.language_code);
}

void RecognizeCall::Send(streaming::SessionEvent event) {
  metrics_.Event(event);
  if (event.kind != streaming::SessionEvent::Kind::kTranscript || !event.transcript.is_final)
    return;
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  v1::TranscriptUpdate* result = response_->add_results();
  ToProto(event.transcript, result);
  ApplyResultExtras(result_extras_, result);
}

void RecognizeCall::Finish(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  finished_ = true;
  *response_->mutable_audio_duration() = DurationProto(audio_seconds_);
  *response_->mutable_processing() = DurationProto(absl::Now() - start_time_);
  // A cancel after the client's deadline counts as DEADLINE_EXCEEDED, as for streams.
  metrics_.Ended(static_cast<grpc::StatusCode>(static_cast<int>(status.code())),
                 call_context_->deadline());
  if (auto delay = RetryDelayMs(status)) {  // admission refusals, draining (API.md 3)
    call_context_->AddTrailingMetadata("grpc-retry-pushback-ms", std::to_string(*delay));
  }
  GrpcHandoffRelease(this);
  ServerUnaryReactor::Finish(ToGrpcStatus(status));
}

void RecognizeCall::Expire(const absl::Status& status) {
  metrics_.Expired(status);
  std::shared_ptr<streaming::Session> s;
  {
    absl::MutexLock lock(&mu_);
    s = session_;
  }
  if (s != nullptr) {
    s->Abort(status);
  } else {
    Finish(status);
  }
}

void RecognizeCall::OnCancel() {
  const GrpcReaction reaction(this);
  std::shared_ptr<streaming::Session> s;
  {
    absl::MutexLock lock(&mu_);
    s = session_;
  }
  if (s != nullptr) s->Detach();
  Finish(absl::CancelledError("client cancelled"));
}

void RecognizeCall::OnDone() {
  GrpcHandoffAcquire(this);
  std::shared_ptr<streaming::Session> s;
  {
    absl::MutexLock lock(&mu_);
    s = std::move(session_);
  }
  CloseCallSession(*ctx_, std::move(s));  // before the slot frees (StreamReactor::OnDone)
  ctx_->registry->Remove(registry_id_);
  std::shared_ptr<RecognizeCall> self = std::move(self_);
}

}  // namespace speechllm::server
