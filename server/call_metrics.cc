#include "server/call_metrics.h"

#include <algorithm>
#include <optional>

#include "server/grpc_status.h"

namespace speechllm::server {
namespace {

// A cancel this close to the call's deadline is the deadline: the server learns it by the client's
// RST_STREAM, which leaves when the client's timer fires, before the server's copy runs out.
constexpr std::chrono::milliseconds kDeadlineSlack{1000};

}  // namespace

CallMetrics::~CallMetrics() {
  absl::MutexLock lock(&mu_);
  if (metrics_ != nullptr && admitted_ && !ended_ && method_ == RpcMethod::kStreamingRecognize) {
    metrics_->StreamClosed();
  }
}

void CallMetrics::Admitted() {
  if (metrics_ == nullptr) return;
  absl::MutexLock lock(&mu_);
  if (admitted_) return;
  admitted_ = true;
  if (method_ == RpcMethod::kStreamingRecognize) metrics_->StreamOpened();
}

void CallMetrics::Rejected(AdmissionReason reason) {
  if (metrics_ == nullptr) return;
  metrics_->AdmissionRejected(method_, reason);
  if (reason == AdmissionReason::kMaxStreams) metrics_->LimitExceeded(Limit::kMaxStreams);
  if (reason == AdmissionReason::kKv) metrics_->LimitExceeded(Limit::kKvBudget);
}

void CallMetrics::LimitExceeded(Limit limit) {
  if (metrics_ != nullptr) metrics_->LimitExceeded(limit);
}

void CallMetrics::Expired(const absl::Status& status) {
  if (metrics_ == nullptr) return;
  const std::string reason = ReasonOf(status);
  if (reason == "IDLE_TIMEOUT") metrics_->LimitExceeded(Limit::kIdleTimeout);
  if (reason == "MAX_DURATION") metrics_->LimitExceeded(Limit::kMaxStreamDuration);
}

void CallMetrics::SetStreamOffset(double seconds) {
  absl::MutexLock lock(&mu_);
  stream_offset_seconds_ = seconds;
}

void CallMetrics::Ended(grpc::StatusCode code, std::chrono::system_clock::time_point deadline) {
  if (metrics_ == nullptr) return;
  absl::MutexLock lock(&mu_);
  if (ended_) return;
  ended_ = true;
  // gRPC reports the caller's deadline as a cancel, and the caller's own timer fires first: the
  // server's copy of the deadline (arrival + grpc-timeout) runs later by the request's travel time.
  if (code == grpc::StatusCode::CANCELLED &&
      std::chrono::system_clock::now() + kDeadlineSlack >= deadline) {
    code = grpc::StatusCode::DEADLINE_EXCEEDED;
  }
  if (admitted_ && method_ == RpcMethod::kStreamingRecognize) metrics_->StreamClosed();
  metrics_->CallEnded(method_, code);
  if (method_ == RpcMethod::kRecognize && code == grpc::StatusCode::OK) {
    metrics_->RecognizeDuration(absl::Now() - start_time_);
  }
}

void CallMetrics::Audio(double seconds) {
  if (metrics_ == nullptr || seconds <= 0) return;
  metrics_->AudioReceived(seconds);
}

void CallMetrics::Processed(const streaming::SessionEvent& event) {
  if (metrics_ == nullptr) return;
  absl::MutexLock lock(&mu_);
  const double processed = event.audio_processed_seconds - stream_offset_seconds_;
  if (processed > processed_seconds_) {
    metrics_->AudioProcessed(processed - processed_seconds_);
    processed_seconds_ = processed;
  }
  if (event.commit_conflicts > commit_conflicts_) {
    metrics_->CommitConflicts(event.commit_conflicts - commit_conflicts_);
    commit_conflicts_ = event.commit_conflicts;
  }
}

void CallMetrics::Delivered(const streaming::SessionEvent& event) {
  if (metrics_ == nullptr) return;
  using Kind = streaming::SessionEvent::Kind;
  absl::MutexLock lock(&mu_);
  if (event.kind == Kind::kWarning) {
    metrics_->WarningSent(event.warning);
  } else if (event.kind == Kind::kSummary) {
    if (event.summary.audio_total_seconds > 0) metrics_->RealTimeFactor(event.summary.compute_rtf);
  } else if (event.kind == Kind::kTranscript && method_ == RpcMethod::kRecognize) {
    // A whole file arrives at once: "received − processed" is the rest of the file and the final's
    // processing the whole file's. The streaming histograms (and their alerts) would read that as
    // streams falling behind; Recognize has speechllm_recognize_duration_seconds.
    return;
  } else if (event.kind == Kind::kTranscript) {
    const streaming::TranscriptEvent& t = event.transcript;
    metrics_->StreamLag(
        std::max(0.0, event.audio_received_seconds - event.audio_processed_seconds));
    if (std::optional<double> ratio = erasure_.Update(t)) metrics_->PartialErasureRatio(*ratio);
    if (!t.is_final) metrics_->QueueWait(false, t.queue_wait);
    if (t.is_final) {
      // An empty Flush final closed no utterance: it counts as a Flush only.
      if (!t.empty_flush) {
        metrics_->FinalLatency(t.endpoint_wait, t.processing);
        metrics_->QueueWait(true, t.queue_wait);
      }
      if (t.from_flush) metrics_->FlushLatency(t.processing);
      if (t.revises_committed) metrics_->CommittedRevision();
    } else if (t.first_partial_latency.has_value()) {
      metrics_->FirstPartialLatency(*t.first_partial_latency);
    }
  }
}

}  // namespace speechllm::server
