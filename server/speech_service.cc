#include "server/speech_service.h"

#include "server/proto_convert.h"
#include "server/recognize_call.h"
#include "server/stream_reactor.h"

namespace speechllm::server {

grpc::ServerBidiReactor<v1::StreamingRecognizeRequest, v1::StreamingRecognizeResponse>*
SpeechService::StreamingRecognize(grpc::CallbackServerContext* context) {
  return StreamReactor::Start(ctx_, context);
}

grpc::ServerUnaryReactor* SpeechService::Recognize(grpc::CallbackServerContext* context,
                                                   const v1::RecognizeRequest* request,
                                                   v1::RecognizeResponse* response) {
  return RecognizeCall::Start(ctx_, context, request, response);
}

grpc::ServerUnaryReactor* SpeechService::GetCapabilities(grpc::CallbackServerContext* context,
                                                         const v1::GetCapabilitiesRequest* request,
                                                         v1::Capabilities* response) {
  response->set_server_version(SPEECHLLM_VERSION);
  v1::ModelInfo* model = response->add_models();
  const engine::ModelConfig& config = ctx_->engine->model_config();
  model->set_name(ctx_->config.model_name);
  model->set_is_default(true);
  for (const std::string& code : ctx_->config.language_codes) model->add_language_codes(code);
  model->set_hidden_size(static_cast<uint32_t>(config.text.hidden_size));
  // One audio token per 40 ms: hop 10 ms, conv stride 2, pooling 2.
  model->set_audio_tokens_per_second(static_cast<float>(config.features.sample_rate_hz) /
                                     (4.0f * static_cast<float>(config.features.hop_length)));
  model->set_max_context_tokens(static_cast<uint32_t>(config.text.max_position_embeddings));
  model->add_embedding_dtypes(v1::AudioEmbeddings::FLOAT32);
  model->add_embedding_dtypes(v1::AudioEmbeddings::BFLOAT16);
  model->set_word_timestamps(false);
  model->set_language_detection(false);
  // Raw PCM and G.711 at 8000 to 48000 Hz (the range below); containers carry their own rate
  // (FLAC up to 192 kHz). OPUS packets in streams only.
  for (v1::AudioFormat::Encoding encoding :
       {v1::AudioFormat::PCM_S16LE, v1::AudioFormat::PCM_F32LE, v1::AudioFormat::MULAW,
        v1::AudioFormat::ALAW, v1::AudioFormat::OGG_OPUS, v1::AudioFormat::WEBM_OPUS,
        v1::AudioFormat::FLAC, v1::AudioFormat::OPUS, v1::AudioFormat::WAV}) {
    response->add_encodings(encoding);
  }
  response->set_min_sample_rate_hz(kMinSampleRateHz);
  response->set_max_sample_rate_hz(kMaxSampleRateHz);
  *response->mutable_limits() = LimitsProto(ctx_->config);
  response->set_auth_required(ctx_->config.auth_required());
  if (ctx_->metrics != nullptr) {
    ctx_->metrics->CallEnded(RpcMethod::kGetCapabilities, grpc::StatusCode::OK);
  }
  auto* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace speechllm::server
