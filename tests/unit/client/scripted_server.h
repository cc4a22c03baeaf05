// A scripted in-process StreamingSpeech server for client tests: it records what arrives and
// answers by script (SessionStarted, a partial every N chunks, a final and a summary at half-close,
// or an error). Test-only; its reactors run on gRPC threads, the log is read by the test thread.
#ifndef SPEECHLLM_TESTS_UNIT_CLIENT_SCRIPTED_SERVER_H_
#define SPEECHLLM_TESTS_UNIT_CLIENT_SCRIPTED_SERVER_H_

#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_handoff.h"
#include "speechllm/v1/speechllm.grpc.pb.h"

namespace speechllm::testing {

using speechllm::v1::StreamingRecognizeRequest;
using speechllm::v1::StreamingRecognizeResponse;

struct ServerScript {
  grpc::Status reject_at_start;      // not OK: Finish with it before reading anything
  grpc::Status fail_after_config;    // not OK: Finish with it right after the first message
  int partial_every_n_chunks = 0;    // 0: no partials; else tentative "c<n>" after chunk n
  int partials_at_start = 0;         // partials sent right after SessionStarted
  bool finish_on_half_close = true;  // false: never finish by itself (deadline/cancel tests)
  std::string required_token;        // non-empty: UNAUTHENTICATED unless "Bearer <token>"
};

// What the server saw; written by reactors on gRPC threads.
struct ServerLog {
  absl::Mutex mu;
  std::vector<StreamingRecognizeRequest> requests ABSL_GUARDED_BY(mu);
  bool half_closed ABSL_GUARDED_BY(mu) = false;
};

class ScriptedReactor
    : public grpc::ServerBidiReactor<StreamingRecognizeRequest, StreamingRecognizeResponse> {
 public:
  ScriptedReactor(grpc::CallbackServerContext* context, const ServerScript& script, ServerLog* log)
      : script_(script), log_(log) {
    if (!script_.required_token.empty()) {
      const auto& metadata = context->client_metadata();
      const auto it = metadata.find("authorization");
      if (it == metadata.end() ||
          std::string(it->second.data(), it->second.size()) != "Bearer " + script_.required_token) {
        FinishOnce(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "token missing"));
        return;
      }
    }
    if (!script_.reject_at_start.ok()) {
      FinishOnce(script_.reject_at_start);
      return;
    }
    GrpcHandoffRelease(this);
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    GrpcHandoffAcquire(this);
    if (!ok) {
      {
        absl::MutexLock lock(&log_->mu);
        log_->half_closed = true;
      }
      if (!script_.finish_on_half_close) return;
      StreamingRecognizeResponse final_response;
      final_response.mutable_transcript()->set_committed_delta("done");
      final_response.mutable_transcript()->set_is_final(true);
      Send(final_response);
      StreamingRecognizeResponse summary;
      summary.mutable_summary()->set_utterances(1);
      Send(summary);
      FinishOnce(grpc::Status::OK);
      return;
    }
    {
      absl::MutexLock lock(&log_->mu);
      log_->requests.push_back(request_);
    }
    if (!seen_first_) {
      seen_first_ = true;
      if (!script_.fail_after_config.ok()) {
        FinishOnce(script_.fail_after_config);
        return;
      }
      StreamingRecognizeResponse started;
      started.mutable_started()->set_session_id("s1");
      Send(started);
      for (int i = 0; i < script_.partials_at_start; ++i) SendPartial(absl::StrCat("p", i));
    } else if (request_.has_audio()) {
      ++chunks_;
      if (script_.partial_every_n_chunks > 0 && chunks_ % script_.partial_every_n_chunks == 0) {
        SendPartial(absl::StrCat("c", chunks_));
      }
    }
    GrpcHandoffRelease(this);
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    GrpcHandoffAcquire(this);
    {
      absl::MutexLock lock(&mu_);
      outbox_.pop_front();
      if (ok && !outbox_.empty()) {
        GrpcHandoffRelease(this);
        StartWrite(&outbox_.front());
        return;
      }
      if (!ok) outbox_.clear();
      writing_ = false;
      if (!TakeFinish()) {
        GrpcHandoffRelease(this);  // as in FinishOnce
        return;
      }
    }
    GrpcHandoffRelease(this);
    Finish(status_);
  }

  void OnCancel() override {
    GrpcHandoffAcquire(this);
    FinishOnce(grpc::Status::CANCELLED);
  }
  void OnDone() override {
    GrpcHandoffAcquire(this);
    delete this;
  }

 private:
  void SendPartial(const std::string& text) {
    StreamingRecognizeResponse partial;
    partial.mutable_transcript()->set_tentative(text);
    Send(partial);
  }

  void Send(StreamingRecognizeResponse response) {
    absl::MutexLock lock(&mu_);
    if (finish_pending_ || finished_) return;
    response.set_response_seq(next_seq_++);
    outbox_.push_back(std::move(response));
    if (!writing_) {
      writing_ = true;
      GrpcHandoffRelease(this);
      StartWrite(&outbox_.front());
    }
  }

  // Finish exactly once, after the write in flight (if any) completes; never under mu_, because
  // finishing may end in OnDone, which deletes this.
  // A reaction that returns without finishing marks its hand-over under mu_: OnDone may run on
  // another thread as soon as the lock is released (ThreadSanitizer saw OnCancel's unlock race
  // with OnDone's delete, gRPC's own ordering being invisible to it).
  void FinishOnce(const grpc::Status& status) {
    bool finish_now = false;
    {
      absl::MutexLock lock(&mu_);
      if (!finish_pending_ && !finished_) {
        finish_pending_ = true;
        status_ = status;
        finish_now = !writing_ && TakeFinish();
      }
      if (!finish_now) {
        GrpcHandoffRelease(this);
        return;
      }
    }
    GrpcHandoffRelease(this);
    Finish(status_);
  }

  // True once: when a finish is pending and it is this caller's turn to call Finish.
  bool TakeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!finish_pending_ || finished_) return false;
    finished_ = true;
    return true;
  }

  const ServerScript script_;
  ServerLog* const log_;
  StreamingRecognizeRequest request_;
  bool seen_first_ = false;
  int chunks_ = 0;
  absl::Mutex mu_;
  std::deque<StreamingRecognizeResponse> outbox_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_;  // written once, before finished_ is set
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
};

class ScriptedService : public speechllm::v1::StreamingSpeech::CallbackService {
 public:
  ServerScript script;
  ServerLog log;

  grpc::ServerBidiReactor<StreamingRecognizeRequest, StreamingRecognizeResponse>*
  StreamingRecognize(grpc::CallbackServerContext* context) override {
    return new ScriptedReactor(context, script, &log);
  }
};

}  // namespace speechllm::testing

#endif  // SPEECHLLM_TESTS_UNIT_CLIENT_SCRIPTED_SERVER_H_
