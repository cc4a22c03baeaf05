#include "server/recognize_call.h"

#include "absl/strings/str_cat.h"
#include "engine/io/wav_reader.h"
#include "server/grpc_status.h"
#include "server/proto_convert.h"

namespace speechllm::server {

RecognizeCall::RecognizeCall(ServiceContext* context, v1::RecognizeResponse* response)
    : ctx_(context), response_(response), start_time_(absl::Now()) {}

RecognizeCall* RecognizeCall::Start(ServiceContext* context, const v1::RecognizeRequest* request,
                                    v1::RecognizeResponse* response) {
  std::shared_ptr<RecognizeCall> call(new RecognizeCall(context, response));
  call->self_ = call;
  auto id = context->registry->Add(call, /*idle_timeout=*/false);
  if (!id.ok()) {
    call->Finish(id.status());
    return call.get();
  }
  call->registry_id_ = *id;
  if (absl::Status status = call->Run(*request); !status.ok()) call->Finish(status);
  return call.get();
}

absl::Status RecognizeCall::Run(const v1::RecognizeRequest& request) {
  if (request.input_case() == v1::RecognizeRequest::kEmbeddings) {
    return WithReason(absl::UnimplementedError(
                          "precomputed audio embeddings are not supported by this server yet"),
                      "FEATURE_UNAVAILABLE");
  }
  const std::string& bytes = request.audio();
  if (bytes.empty())
    return WithField(WithReason(absl::InvalidArgumentError("no audio"), "AUDIO_DECODE_ERROR"),
                     "audio");
  auto setup =
      ConvertConfig(request.config(), ctx_->config, *ctx_->prompt, /*for_recognize=*/true, bytes);
  if (!setup.ok()) return setup.status();
  const int model_rate = ctx_->log_mel->config().sample_rate_hz;
  std::vector<float> samples;
  if (setup->audio_is_wav) {
    auto wav = engine::ParseWav(bytes);
    if (!wav.ok()) return WithField(WithReason(wav.status(), "AUDIO_DECODE_ERROR"), "audio");
    if (wav->sample_rate_hz != model_rate) {
      return WithField(WithReason(absl::InvalidArgumentError(absl::StrCat(
                                      "WAV at ", wav->sample_rate_hz,
                                      " Hz is not supported yet: send ", model_rate, " Hz")),
                                  "UNSUPPORTED_ENCODING"),
                       "audio");
    }
    samples = wav->Mono();
  } else {
    auto decoder = streaming::AudioDecoder::Create(setup->audio, model_rate);
    if (!decoder.ok()) return WithReason(decoder.status(), "UNSUPPORTED_ENCODING");
    if (absl::Status s = (*decoder)->Decode(bytes, &samples, nullptr); !s.ok())
      return WithReason(s, "NON_FINITE_AUDIO");
    if (absl::Status s = (*decoder)->Finish(&samples); !s.ok())
      return WithReason(s, "AUDIO_DECODE_ERROR");
  }
  audio_seconds_ = static_cast<double>(samples.size()) / model_rate;
  if (samples.empty())
    return WithField(
        WithReason(absl::InvalidArgumentError("no audio samples"), "AUDIO_DECODE_ERROR"), "audio");
  if (audio_seconds_ > absl::ToDoubleSeconds(ctx_->config.max_recognize_audio)) {
    return WithReason(
        absl::InvalidArgumentError(absl::StrCat(
            audio_seconds_, " s of audio exceeds max_recognize_audio ",
            absl::FormatDuration(ctx_->config.max_recognize_audio), ": stream it instead")),
        "AUDIO_TOO_LONG");
  }
  auto session = streaming::Session::Create(setup->session,
                                            {ctx_->engine, ctx_->log_mel, ctx_->tokenizer}, this);
  if (!session.ok()) {
    absl::Status status = session.status();
    if (status.code() == absl::StatusCode::kResourceExhausted) {
      status = WithRetryDelay(WithReason(status, "KV_BUDGET"), ctx_->config.retry_delay);
    }
    return status;
  }
  {
    absl::MutexLock lock(&mu_);
    session_ = *session;
  }
  ctx_->dispatcher->Register(*session);
  if (absl::Status s = (*session)->AcceptAudio(samples, absl::Now()); !s.ok()) return s;
  if (absl::Status s = (*session)->FinishInput(absl::Now()); !s.ok())
    return WithReason(s, "AUDIO_TOO_SHORT");
  return absl::OkStatus();
}

void RecognizeCall::Send(streaming::SessionEvent event) {
  if (event.kind != streaming::SessionEvent::Kind::kTranscript || !event.transcript.is_final)
    return;
  absl::MutexLock lock(&mu_);
  if (!finished_) ToProto(event.transcript, response_->add_results());
}

void RecognizeCall::Finish(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  finished_ = true;
  *response_->mutable_audio_duration() = DurationProto(audio_seconds_);
  *response_->mutable_processing() = DurationProto(absl::Now() - start_time_);
  ServerUnaryReactor::Finish(ToGrpcStatus(status));
}

void RecognizeCall::Expire(const absl::Status& status) {
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
  std::shared_ptr<streaming::Session> s;
  {
    absl::MutexLock lock(&mu_);
    s = session_;
  }
  if (s != nullptr) s->Detach();
  Finish(absl::CancelledError("client cancelled"));
}

void RecognizeCall::OnDone() {
  ctx_->registry->Remove(registry_id_);
  std::shared_ptr<streaming::Session> s;
  {
    absl::MutexLock lock(&mu_);
    s = std::move(session_);
  }
  if (s != nullptr) {
    s->Detach();
    ctx_->dispatcher->Unregister(s->sequence_id());
  }
  s.reset();
  std::shared_ptr<RecognizeCall> self = std::move(self_);
}

}  // namespace speechllm::server
