// StreamingClient::Reactor: the gRPC callback side of one StreamingRecognize call, declared inside
// StreamingClient (speech_client.h) and defined here so that speech_client.cc stays readable. Owned
// by its StreamingClient; its reactions run on gRPC's callback threads and take the client's mutex.
// Include only from speech_client.cc.
#ifndef SPEECHLLM_CLIENT_STREAMING_CLIENT_REACTOR_H_
#define SPEECHLLM_CLIENT_STREAMING_CLIENT_REACTOR_H_

#include "absl/synchronization/mutex.h"
#include "client/speech_client.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_handoff.h"

namespace speechllm::client {

// The gRPC side of the call. Holds: one for the writer thread (removed when it stops writing) and
// one for reads (removed when the read stream ends), because both start operations from outside
// reactions; OnDone therefore runs only after both flows are over.
class StreamingClient::Reactor
    : public grpc::ClientBidiReactor<speechllm::v1::StreamingRecognizeRequest,
                                     speechllm::v1::StreamingRecognizeResponse> {
 public:
  explicit Reactor(StreamingClient* owner) : owner_(owner) {}

  void OnReadDone(bool ok) override {
    GrpcHandoffAcquire(this);
    if (!ok) {
      {
        absl::MutexLock lock(&owner_->mu_);
        owner_->read_in_flight_ = false;
        owner_->read_stream_ended_ = true;
      }
      GrpcHandoffRelease(this);
      RemoveHold();
      return;
    }
    owner_->OnResponse(read_buffer_);
    {
      absl::MutexLock lock(&owner_->mu_);
      owner_->read_in_flight_ = false;
    }
    owner_->StartReadIfWanted();
  }

  void OnWriteDone(bool ok) override { WriteFinished(ok); }
  void OnWritesDoneDone(bool ok) override { WriteFinished(ok); }

  void OnDone(const grpc::Status& status) override {
    GrpcHandoffAcquire(this);
    absl::MutexLock lock(&owner_->mu_);
    owner_->status_ = status;
    owner_->done_time_ = Clock::now();
    owner_->done_ = true;
  }

  speechllm::v1::StreamingRecognizeResponse* read_buffer() { return &read_buffer_; }

 private:
  void WriteFinished(bool ok) {
    GrpcHandoffAcquire(this);
    absl::MutexLock lock(&owner_->mu_);
    owner_->write_in_flight_ = false;
    owner_->last_write_ok_ = ok;
  }

  StreamingClient* const owner_;
  speechllm::v1::StreamingRecognizeResponse read_buffer_;
};

}  // namespace speechllm::client

#endif  // SPEECHLLM_CLIENT_STREAMING_CLIENT_REACTOR_H_
