// CallMetrics: one call's metrics: admission, limits, its end (once) and, for streams, the
// observations derived from its audio and the session's events (first-partial latency as the
// session measured it from the speech onset; finals give the final, flush, revision and erasure
// figures). With a null Metrics every method does nothing. Owned by the call; Audio() on the reader
// thread, the rest from any thread (internally locked).
#ifndef SPEECHLLM_SERVER_CALL_METRICS_H_
#define SPEECHLLM_SERVER_CALL_METRICS_H_

#include <chrono>
#include <cstdint>

#include <grpcpp/support/status.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/metrics.h"
#include "server/partial_erasure.h"
#include "streaming/session_event.h"

namespace speechllm::server {

class CallMetrics {
 public:
  CallMetrics(Metrics* metrics, RpcMethod method) : metrics_(metrics), method_(method) {}
  ~CallMetrics();  // closes an admitted stream that never ended

  void Admitted() ABSL_LOCKS_EXCLUDED(mu_);
  void Rejected(AdmissionReason reason);
  void LimitExceeded(Limit limit);
  // The registry's reaper ended the call: counts idle_timeout or max_stream_duration by the
  // status's ErrorInfo reason (IDLE_TIMEOUT, MAX_DURATION); draining is not a limit.
  void Expired(const absl::Status& status);
  // The config's stream_offset (added by the session to every offset in its events).
  void SetStreamOffset(double seconds) ABSL_LOCKS_EXCLUDED(mu_);
  // The call's final code, counted once; CANCELLED from 1 s before `deadline` on counts as
  // DEADLINE_EXCEEDED.
  void Ended(grpc::StatusCode code, std::chrono::system_clock::time_point deadline =
                                        std::chrono::system_clock::time_point::max())
      ABSL_LOCKS_EXCLUDED(mu_);
  // `seconds` of decoded audio handed to the session.
  void Audio(double seconds);
  // An event the session sent: Processed counts the engine's side (audio processed, commit
  // conflicts) when the session produces it; Delivered counts what the client receives (latencies,
  // lag, erasure, warnings, the summary's RTF) when its response is written, so that responses a
  // stream drops (its end already pending) or merges (an unsent partial replaced) do not count.
  // Event does both (Recognize, whose one response holds everything).
  void Processed(const streaming::SessionEvent& event) ABSL_LOCKS_EXCLUDED(mu_);
  void Delivered(const streaming::SessionEvent& event) ABSL_LOCKS_EXCLUDED(mu_);
  void Event(const streaming::SessionEvent& event) ABSL_LOCKS_EXCLUDED(mu_) {
    Processed(event);
    Delivered(event);
  }

 private:
  Metrics* const metrics_;
  const RpcMethod method_;
  const absl::Time start_time_ = absl::Now();
  absl::Mutex mu_;
  double stream_offset_seconds_ ABSL_GUARDED_BY(mu_) = 0;
  bool admitted_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  double processed_seconds_ ABSL_GUARDED_BY(mu_) = 0;  // without stream_offset
  int64_t commit_conflicts_ ABSL_GUARDED_BY(mu_) = 0;  // counted so far
  PartialErasure erasure_ ABSL_GUARDED_BY(mu_);
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_CALL_METRICS_H_
