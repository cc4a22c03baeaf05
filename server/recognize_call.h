// RecognizeCall: one unary Recognize call. Decodes the whole clip with the streams' decoders, runs
// it through a Session with interim results off (the endpointer splits long files; each utterance
// gets an exact final) and answers with one final per utterance; precomputed embeddings are one
// utterance that skips the encoder. ResultSink (dispatcher thread) and LimitedCall (reaper thread);
// owned by itself through self_, released in OnDone.
#ifndef SPEECHLLM_SERVER_RECOGNIZE_CALL_H_
#define SPEECHLLM_SERVER_RECOGNIZE_CALL_H_

#include <memory>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "server/call_metrics.h"
#include "server/event_proto.h"
#include "server/service_context.h"
#include "server/stream_registry.h"
#include "speechllm/v1/speechllm.grpc.pb.h"
#include "streaming/result_sink.h"
#include "streaming/session.h"

namespace speechllm::server {

class RecognizeCall : public grpc::ServerUnaryReactor,
                      public streaming::ResultSink,
                      public LimitedCall,
                      public std::enable_shared_from_this<RecognizeCall> {
 public:
  static RecognizeCall* Start(ServiceContext* context, grpc::CallbackServerContext* call_context,
                              const v1::RecognizeRequest* request, v1::RecognizeResponse* response);

  void OnCancel() override;
  void OnDone() override;
  void Send(streaming::SessionEvent event) override;
  void OnCapacity() override {}
  void Finish(const absl::Status& status) override;
  void Expire(const absl::Status& status) override;

 private:
  RecognizeCall(ServiceContext* context, grpc::CallbackServerContext* call_context,
                v1::RecognizeResponse* response);
  // Validation, decoding and the session; errors finish the call.
  absl::Status Run(const v1::RecognizeRequest& request);
  // The AudioEmbeddings input: checked and handed to the session as one utterance.
  absl::Status RunEmbeddings(const v1::RecognizeRequest& request);
  // What the response and each result carry besides the transcript (StreamSetup::result_extras).
  void SetResultExtras(const ResultExtras& extras) ABSL_LOCKS_EXCLUDED(mu_);

  ServiceContext* const ctx_;
  grpc::CallbackServerContext* const call_context_;
  v1::RecognizeResponse* const response_;
  std::shared_ptr<RecognizeCall> self_;
  uint64_t registry_id_ = 0;
  CallMetrics metrics_;  // internally locked
  absl::Time start_time_;
  double audio_seconds_ = 0;

  absl::Mutex mu_;
  std::shared_ptr<streaming::Session> session_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  ResultExtras result_extras_ ABSL_GUARDED_BY(mu_);  // added to the response and each result
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_RECOGNIZE_CALL_H_
