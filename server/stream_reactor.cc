#include "server/stream_reactor.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "proto/grpc_handoff.h"
#include "server/call_session.h"
#include "server/event_proto.h"
#include "server/grpc_status.h"

namespace speechllm::server {

using streaming::SessionEvent;

StreamReactor::StreamReactor(ServiceContext* context, grpc::CallbackServerContext* call_context)
    : ctx_(context),
      call_context_(call_context),
      metrics_(context->metrics, RpcMethod::kStreamingRecognize) {}

StreamReactor* StreamReactor::Start(ServiceContext* context,
                                    grpc::CallbackServerContext* call_context) {
  std::shared_ptr<StreamReactor> reactor(new StreamReactor(context, call_context));
  reactor->self_ = reactor;
  auto id = context->registry->Add(reactor, /*idle_timeout=*/true);
  absl::MutexLock lock(&reactor->mu_);
  if (!id.ok()) {
    reactor->metrics_.Rejected(id.status().code() == absl::StatusCode::kUnavailable
                                   ? AdmissionReason::kDraining
                                   : AdmissionReason::kMaxStreams);
    reactor->reading_done_ = true;
    if (auto delay = RetryDelayMs(id.status())) {
      call_context->AddTrailingMetadata("grpc-retry-pushback-ms", std::to_string(*delay));
    }
    reactor->FinishCallLocked(ToGrpcStatus(id.status()));
  } else {
    reactor->registry_id_ = *id;
    reactor->metrics_.Admitted();
    GrpcHandoffRelease(reactor.get());
    reactor->StartRead(&reactor->request_);
  }
  return reactor.get();
}

std::shared_ptr<streaming::Session> StreamReactor::session() {
  absl::MutexLock lock(&mu_);
  return session_;
}

void StreamReactor::OnReadDone(bool ok) {
  const GrpcReaction reaction(this);
  // The session's input half runs under input_mu_: here, and in Expire on the reaper thread.
  absl::MutexLock input(&input_mu_);
  if (input_closed_) return;  // a limit or an error ended the input; no more reads
  if (!ok) {                  // half-close, or the call broke
    CloseInputLocked();
    // A cancel (the client's, or its deadline) also ends reads, before or after OnCancel: that
    // is not the end of the audio, and nobody is left to receive its final.
    if (call_context_->IsCancelled()) return;
    std::shared_ptr<streaming::Session> s = session();
    if (s == nullptr) {
      {
        absl::MutexLock lock(&mu_);
        count_at_done_ = true;  // most likely a cancel gRPC has not reported yet: OnDone knows
      }
      Fail(WithReason(absl::InvalidArgumentError("the stream ended before its config message"),
                      "CONFIG_NOT_FIRST"));
    } else if (!end_of_audio_) {
      if (absl::Status status = EndAudio(s.get()); !status.ok()) Fail(status);
    }
    return;
  }
  ctx_->registry->Touch(registry_id_);
  absl::Status size = ctx_->config.CheckMessageSize(request_.ByteSizeLong());
  if (!size.ok()) metrics_.LimitExceeded(Limit::kMaxReceiveMessageBytes);
  if (absl::Status status = size.ok() ? HandleRequest() : size; !status.ok()) {
    CloseInputLocked();
    Fail(status);
    return;
  }
  // Idle means waiting for the client: the time spent handling its message (which can wait for
  // the engine's lock under load) does not count.
  ctx_->registry->Touch(registry_id_);
  ReadNextOrPause();
}

void StreamReactor::CloseInputLocked() {
  input_closed_ = true;
  absl::MutexLock lock(&mu_);
  reading_done_ = true;
}

void StreamReactor::ReadNextOrPause() {
  std::shared_ptr<streaming::Session> s = session();
  {
    absl::MutexLock lock(&mu_);
    capacity_signal_ = false;
  }
  const bool pause = s != nullptr && s->ShouldPauseReading();
  bool warn = false;
  {
    absl::MutexLock lock(&mu_);
    if (finished_ || finish_pending_ || reading_done_) return;
    if (pause && !capacity_signal_) {
      metrics_.LimitExceeded(Limit::kMaxBufferedAudio);
      reads_paused_ = true;
      ctx_->registry->ReadsPaused(registry_id_, true);  // the client cannot be idle meanwhile
      warn = !flow_warned_;
      flow_warned_ = true;
    } else {
      GrpcHandoffRelease(this);
      StartRead(&request_);
    }
  }
  if (warn) {
    SendWarning(
        SessionEvent::WarningCode::kFlowControl,
        "audio arrives faster than it is processed: reading paused until the backlog drains");
  }
}

void StreamReactor::OnCapacity() {
  absl::MutexLock lock(&mu_);
  capacity_signal_ = true;
  if (reads_paused_ && !finished_ && !finish_pending_ && !reading_done_) {
    reads_paused_ = false;
    ctx_->registry->ReadsPaused(registry_id_, false);
    GrpcHandoffRelease(this);
    StartRead(&request_);
  }
}

void StreamReactor::SendWarning(SessionEvent::WarningCode code, const std::string& message) {
  // Through the session, so that the warning carries the stream's audio offsets like every event.
  if (std::shared_ptr<streaming::Session> s = session(); s != nullptr) {
    s->SendWarning(code, message);
    return;
  }
  SessionEvent event;
  event.kind = SessionEvent::Kind::kWarning;
  event.warning = code;
  event.message = message;
  Send(std::move(event));
}

void StreamReactor::Send(SessionEvent event) {
  metrics_.Processed(event);  // the engine's work counts whether or not the client gets it
  v1::StreamingRecognizeResponse response;
  ToProto(event, &response);
  const bool partial = event.kind == SessionEvent::Kind::kTranscript && !event.transcript.is_final;
  absl::MutexLock lock(&mu_);
  if (response.has_transcript()) ApplyResultExtras(result_extras_, response.mutable_transcript());
  EnqueueLocked(std::move(response), partial, std::move(event));
}

void StreamReactor::EnqueueLocked(v1::StreamingRecognizeResponse response, bool partial,
                                  std::optional<SessionEvent> event) {
  if (finished_ || finish_pending_) return;
  if (partial && !queue_.empty() && queue_.back().partial &&
      queue_.back().response.transcript().utterance_id() == response.transcript().utterance_id()) {
    // An unsent partial is replaced by the newer snapshot; committed text accumulates.
    Pending& previous = queue_.back();
    const std::string committed =
        previous.response.transcript().committed_delta() + response.transcript().committed_delta();
    response.mutable_transcript()->set_committed_delta(committed);
    previous.response = std::move(response);
    // The metrics see the partial the client sees: the merged text, and the utterance's first
    // partial latency if the replaced snapshot was its first.
    if (event.has_value() && previous.event.has_value()) {
      event->transcript.committed_delta = committed;
      if (!event->transcript.first_partial_latency.has_value()) {
        event->transcript.first_partial_latency = previous.event->transcript.first_partial_latency;
      }
    }
    previous.event = std::move(event);
  } else {
    queue_.push_back(Pending{std::move(response), partial, std::move(event)});
  }
  if (static_cast<int>(queue_.size()) > ctx_->config.max_pending_responses) {
    // The client stopped reading: memory stays bounded, the stream ends.
    metrics_.LimitExceeded(Limit::kMaxPendingResponses);
    queue_.clear();
    SetFinishPendingLocked(
        ToGrpcStatus(WithReason(absl::ResourceExhaustedError(absl::StrCat(
                                    "client is not reading: more than ",
                                    ctx_->config.max_pending_responses, " responses pending")),
                                "QUEUE_FULL")));
  }
  MaybeWriteLocked();
}

void StreamReactor::MaybeWriteLocked() {
  if (finished_ || writing_) return;
  if (!queue_.empty()) {  // what the session produced is written before any finish
    Pending next = std::move(queue_.front());
    queue_.pop_front();
    if (next.event.has_value()) metrics_.Delivered(*next.event);
    in_flight_ = std::move(next.response);
    in_flight_.set_response_seq(++response_seq_);
    writing_ = true;
    GrpcHandoffRelease(this);
    StartWrite(&in_flight_);
  } else if (finish_pending_) {
    FinishCallLocked(finish_status_);
  }
}

void StreamReactor::OnWriteDone(bool ok) {
  const GrpcReaction reaction(this);
  absl::MutexLock lock(&mu_);
  writing_ = false;
  if (!ok) {  // the call is broken (cancelled); nothing more can be written
    queue_.clear();
    if (!finish_pending_) {
      SetFinishPendingLocked(grpc::Status(grpc::StatusCode::CANCELLED, "write failed"));
    }
  }
  MaybeWriteLocked();
}

void StreamReactor::Finish(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (finished_ || finish_pending_) return;
  SetFinishPendingLocked(ToGrpcStatus(status));
  if (auto delay = RetryDelayMs(status)) {
    call_context_->AddTrailingMetadata("grpc-retry-pushback-ms", std::to_string(*delay));
  }
  MaybeWriteLocked();
}

void StreamReactor::SetFinishPendingLocked(grpc::Status status) {
  finish_pending_ = true;
  finish_status_ = std::move(status);
  // The status goes after the write in flight; a call whose client never lets that write complete
  // is cancelled by the registry after the idle timeout.
  ctx_->registry->Finishing(registry_id_);
}

void StreamReactor::FinishCallLocked(const grpc::Status& status) {
  if (finished_) return;
  finished_ = true;
  finished_code_ = status.error_code();
  // Counted before the status goes out (a scrape right after the client's Finish sees the call),
  // unless the end may be a cancel read as a half-close: OnDone counts that one.
  if (!count_at_done_) {
    metrics_.Ended(status.ok() && call_context_->IsCancelled() ? grpc::StatusCode::CANCELLED
                                                               : status.error_code(),
                   call_context_->deadline());
  }
  GrpcHandoffRelease(this);
  ServerBidiReactor::Finish(status);
}

void StreamReactor::Fail(const absl::Status& status) {
  if (std::shared_ptr<streaming::Session> s = session(); s != nullptr) {
    // Finals first (API.md 3): the audio received so far is finalized, the samples a resampler
    // still holds included, then the summary and `status` end the stream.
    if (decoder_ != nullptr && !decoder_finished_) DrainDecoder(s.get()).IgnoreError();
    s->FinishEarly(status, absl::Now());
  } else {
    Finish(status);
  }
}

void StreamReactor::Expire(const absl::Status& status) {
  absl::MutexLock input(&input_mu_);  // waits for a message being handled
  // Input ended (half-close, or EndOfAudio: API.md's equal) or the end is decided: not expired.
  if (input_closed_ || end_of_audio_) return;
  if (absl::MutexLock lock(&mu_); finish_pending_) return;
  metrics_.Expired(status);
  CloseInputLocked();
  Fail(status);
}

void StreamReactor::Cancel() {
  absl::MutexLock lock(&cancel_mu_);
  if (done_) return;
  cancelling_thread_.store(std::this_thread::get_id());
  call_context_->TryCancel();  // its reactions (OnCancel, OnDone) may run here, inline
  cancelling_thread_.store(std::thread::id());
}

void StreamReactor::OnCancel() {
  const GrpcReaction reaction(this);
  if (std::shared_ptr<streaming::Session> s = session(); s != nullptr) s->Detach();
  absl::MutexLock lock(&mu_);
  queue_.clear();
  FinishCallLocked(grpc::Status::CANCELLED);
}

void StreamReactor::OnDone() {
  GrpcHandoffAcquire(this);
  if (cancelling_thread_.load() == std::this_thread::get_id()) {
    cancel_mu_.AssertHeld();  // inline in Cancel() on this thread
    done_ = true;
  } else {
    absl::MutexLock lock(&cancel_mu_);
    done_ = true;
  }
  std::shared_ptr<streaming::Session> s;
  {
    absl::MutexLock lock(&mu_);
    s = std::move(session_);
    // A call FinishCallLocked left uncounted (ended without a config by what may be a cancel:
    // gRPC can end the reads before IsCancelled() turns true) is counted here, where the cancel
    // state is final; for any other call this does nothing (a call is counted once).
    metrics_.Ended(call_context_->IsCancelled() ? grpc::StatusCode::CANCELLED : finished_code_,
                   call_context_->deadline());
  }
  // The engine sequence goes before the stream slot, so that a client reconnecting the moment the
  // slot frees finds the engine's sequence count and KV free as well.
  CloseCallSession(*ctx_, std::move(s));
  ctx_->registry->Remove(registry_id_);
  std::shared_ptr<StreamReactor> self = std::move(self_);
}

}  // namespace speechllm::server
