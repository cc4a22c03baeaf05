// StreamingClient's read side and call state (client/speech_client.h): responses as gRPC's reactor
// delivers them (recorded with what had been sent and captured by then), paused reads,
// cancellation and the snapshots. The write side is speech_client.cc.
#include <utility>

#include "client/speech_client.h"
#include "client/streaming_client_reactor.h"
#include "proto/grpc_handoff.h"

namespace speechllm::client {

using speechllm::v1::StreamingRecognizeResponse;

void StreamingClient::OnResponse(const StreamingRecognizeResponse& response) {
  ResponseRecord record;
  {
    absl::MutexLock lock(&mu_);
    record.response = response;
    record.arrival_time = Clock::now();
    record.since_start = absl::FromChrono(record.arrival_time - start_time_);
    record.chunks_sent = static_cast<int64_t>(sent_chunks_.size());
    if (!sent_chunks_.empty()) {
      record.audio_sent = sent_chunks_.back().audio_end;
      record.last_audio_sent_time = sent_chunks_.back().send_time;
    }
    record.audio_captured = AudioCapturedLocked(record.arrival_time, record.audio_sent);
    responses_.push_back(record);
  }
  if (callback_) callback_(record);
}

void StreamingClient::StartReadIfWanted() {
  {
    absl::MutexLock lock(&mu_);
    if (!reactor_ready_ || reads_paused_ || read_in_flight_ || read_stream_ended_) {
      return;
    }
    read_in_flight_ = true;
  }
  // From outside reactions this relies on the read hold taken in Start().
  GrpcHandoffRelease(reactor_.get());
  reactor_->StartRead(reactor_->read_buffer());
}

void StreamingClient::PauseReads() {
  absl::MutexLock lock(&mu_);
  reads_paused_ = true;
}

void StreamingClient::ResumeReads() {
  {
    absl::MutexLock lock(&mu_);
    reads_paused_ = false;
  }
  StartReadIfWanted();
}

void StreamingClient::Cancel() {
  {
    absl::MutexLock lock(&mu_);
    if (!started_ || done_) return;
    write_stream_dead_ = true;  // wakes the writer out of pacing and makes it stop
  }
  context_.TryCancel();
  ResumeReads();  // a pending read fails at once, which releases the read hold
}

grpc::Status StreamingClient::Await() {
  ResumeReads();
  absl::MutexLock lock(&mu_);
  if (!started_) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "not started");
  mu_.Await(absl::Condition(&done_));
  return status_;
}

bool StreamingClient::WaitForDone(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&done_), timeout);
}

std::vector<ResponseRecord> StreamingClient::responses() const {
  absl::MutexLock lock(&mu_);
  return responses_;
}

std::vector<SentChunk> StreamingClient::sent_chunks() const {
  absl::MutexLock lock(&mu_);
  return sent_chunks_;
}

Clock::time_point StreamingClient::start_time() const {
  absl::MutexLock lock(&mu_);
  return start_time_;
}

Clock::time_point StreamingClient::done_time() const {
  absl::MutexLock lock(&mu_);
  return done_time_;
}

}  // namespace speechllm::client
