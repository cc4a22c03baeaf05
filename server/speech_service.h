// SpeechService: the speechllm.v1.StreamingSpeech callback service. Creates a StreamReactor per
// StreamingRecognize call and a RecognizeCall per Recognize call, and answers GetCapabilities.
// Owned by main.cc; methods run on gRPC threads.
#ifndef SPEECHLLM_SERVER_SPEECH_SERVICE_H_
#define SPEECHLLM_SERVER_SPEECH_SERVICE_H_

#include "server/service_context.h"
#include "speechllm/v1/speechllm.grpc.pb.h"

namespace speechllm::server {

class SpeechService : public v1::StreamingSpeech::CallbackService {
 public:
  explicit SpeechService(ServiceContext* context) : ctx_(context) {}

  grpc::ServerBidiReactor<v1::StreamingRecognizeRequest, v1::StreamingRecognizeResponse>*
  StreamingRecognize(grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* Recognize(grpc::CallbackServerContext* context,
                                      const v1::RecognizeRequest* request,
                                      v1::RecognizeResponse* response) override;
  grpc::ServerUnaryReactor* GetCapabilities(grpc::CallbackServerContext* context,
                                            const v1::GetCapabilitiesRequest* request,
                                            v1::Capabilities* response) override;

 private:
  ServiceContext* ctx_;
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_SPEECH_SERVICE_H_
