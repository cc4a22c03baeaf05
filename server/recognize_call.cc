#include "server/recognize_call.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/io/wav_reader.h"
#include "proto/grpc_handoff.h"
#include "server/audio_embeddings.h"
#include "server/call_session.h"
#include "server/event_proto.h"
#include "server/grpc_status.h"
#include "server/proto_convert.h"
#include "streaming/audio_decoder.h"
#include "streaming/resampler.h"

namespace speechllm::server {

namespace {

absl::Status AudioError(const absl::Status& status) {
  return WithField(
      WithReason(status, streaming::IsNonFiniteAudioError(status) ? "NON_FINITE_AUDIO"
                                                                  : "AUDIO_DECODE_ERROR"),
      "audio");
}

// A WAV file at the header's rate (8000 to 48000 Hz) and channel count, averaged to mono and
// resampled to `model_rate` by the streaming Resampler. `declared` rate/channels: 0 or the
// header's. Audio longer than `max_samples` at the model's rate is an AudioTooLongError, found
// from the header before any sample is converted.
absl::StatusOr<std::vector<float>> DecodeWav(absl::string_view bytes,
                                             const streaming::AudioFormatSpec& declared,
                                             int model_rate, int64_t max_samples) {
  auto layout = engine::ParseWavLayout(bytes);
  if (!layout.ok()) return AudioError(layout.status());
  if (declared.sample_rate_hz != 0 && declared.sample_rate_hz != layout->sample_rate_hz) {
    return WithField(WithReason(absl::InvalidArgumentError(
                                    absl::StrCat("the WAV header says ", layout->sample_rate_hz,
                                                 " Hz but config.audio.sample_rate_hz declares ",
                                                 declared.sample_rate_hz, " (0 = use the header)")),
                                "BAD_CONFIG"),
                     "config.audio.sample_rate_hz");
  }
  if (declared.channels != 0 && declared.channels != layout->num_channels) {
    return WithField(WithReason(absl::InvalidArgumentError(
                                    absl::StrCat("the WAV header says ", layout->num_channels,
                                                 " channel(s) but config.audio.channels declares ",
                                                 declared.channels, " (0 = use the header)")),
                                "BAD_CONFIG"),
                     "config.audio.channels");
  }
  if (layout->sample_rate_hz < 8000 || layout->sample_rate_hz > 48000) {
    return WithField(WithReason(absl::InvalidArgumentError(
                                    absl::StrCat("WAV at ", layout->sample_rate_hz,
                                                 " Hz is not supported: 8000 to 48000 Hz")),
                                "UNSUPPORTED_ENCODING"),
                     "audio");
  }
  if (layout->num_frames * model_rate > max_samples * layout->sample_rate_hz) {
    return streaming::AudioTooLongError(absl::StrCat(
        "the WAV holds ", layout->num_frames, " sample frames at ", layout->sample_rate_hz, " Hz"));
  }
  auto audio = engine::ParseWav(bytes);
  if (!audio.ok()) return AudioError(audio.status());
  std::vector<float> mono = audio->Mono();
  for (size_t i = 0; i < mono.size(); ++i) {
    if (!std::isfinite(mono[i])) {
      return AudioError(streaming::NonFiniteAudioError(
          absl::StrCat("the WAV holds a non-finite sample (", mono[i], ") at frame ", i)));
    }
  }
  if (audio->sample_rate_hz == model_rate) return mono;
  auto resampler = streaming::Resampler::Create(audio->sample_rate_hz, model_rate);
  if (!resampler.ok()) return resampler.status();
  std::vector<float> samples;
  if (absl::Status s = (*resampler)->Process(mono, &samples); !s.ok()) return s;
  if (absl::Status s = (*resampler)->Flush(&samples); !s.ok()) return s;
  return samples;
}

// Raw PCM, G.711, Ogg Opus, WebM Opus or FLAC bytes decoded in one call, stopping once they pass
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
      setup->audio_is_wav ? DecodeWav(bytes, setup->audio, model_rate, max_samples)
                          : DecodeAudio(bytes, setup->audio, model_rate, max_samples);
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
    return s;
  }
  metrics_.Audio(audio_seconds_);
  return absl::OkStatus();
}

void RecognizeCall::Send(streaming::SessionEvent event) {
  metrics_.Event(event);
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
