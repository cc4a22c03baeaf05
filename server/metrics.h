// Metrics: the server's Prometheus metrics (ARCHITECTURE.md 7, API.md 5) in a prometheus-cpp core
// registry behind typed methods, so call sites never spell a metric name; CallMetrics is one
// call's null-tolerant view of it. Engine counters are read from Engine::stats() at scrape time,
// per-step histograms arrive through engine::StepObserver. Owned by main.cc, outlives every call.
// Thread safety: every Metrics method may be called from any thread.
#ifndef SPEECHLLM_SERVER_METRICS_H_
#define SPEECHLLM_SERVER_METRICS_H_

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <grpcpp/support/status.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "engine/step_observer.h"
#include "streaming/session_event.h"

namespace speechllm::server {

enum class RpcMethod { kStreamingRecognize, kRecognize, kGetCapabilities };
// speechllm_admission_rejections_total{reason}.
enum class AdmissionReason { kMaxStreams, kKv, kDraining };
// speechllm_limit_exceeded_total{limit}: one label per server limit (README "Running in
// production" lists each limit's flag, default and status).
enum class Limit {
  kMaxStreams,
  kKvBudget,
  kMaxChunkBytes,
  kIdleTimeout,
  kMaxStreamDuration,
  kMaxBufferedAudio,     // reads paused (flow control), the stream goes on
  kMaxPendingResponses,  // the client stopped reading
  kMaxRecognizeAudio,
  kMaxReceiveMessageBytes,
};
// speechllm_auth_failures_total{reason}.
enum class AuthFailure { kTokenMissing, kTokenInvalid };

class Metrics : public engine::StepObserver {
 public:
  // `version` is the value of speechllm_build_info{version}.
  explicit Metrics(const std::string& version);
  ~Metrics() override;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Engine counters and gauges are read through `source` at every scrape. Set before serving.
  void SetEngineStatsSource(std::function<engine::EngineStats()> source) ABSL_LOCKS_EXCLUDED(mu_);
  // engine::StepObserver (engine loop thread).
  void OnStep(const engine::StepRecord& step) override;

  void StreamOpened();
  void StreamClosed();
  void CallEnded(RpcMethod method, grpc::StatusCode code);
  void AdmissionRejected(AdmissionReason reason);
  void LimitExceeded(Limit limit);
  void AuthFailed(AuthFailure failure);
  void AudioReceived(double seconds);
  void AudioProcessed(double seconds);
  void FirstPartialLatency(absl::Duration latency);
  void FinalLatency(absl::Duration latency);
  void StreamLag(double seconds);
  void RealTimeFactor(double ratio);
  void RecognizeDuration(absl::Duration duration);
  void WarningSent(streaming::SessionEvent::WarningCode code);

  // Every metric in the Prometheus text exposition format 0.0.4 (metrics HTTP threads).
  std::string Scrape() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Gauge& streams_active_;
  prometheus::Family<prometheus::Counter>& admission_rejections_;
  prometheus::Family<prometheus::Counter>& limits_;
  prometheus::Family<prometheus::Counter>& auth_failures_;
  prometheus::Family<prometheus::Counter>& warnings_;
  prometheus::Counter& audio_received_seconds_;
  prometheus::Counter& audio_processed_seconds_;
  prometheus::Histogram& first_partial_latency_;
  prometheus::Histogram& final_latency_;
  prometheus::Histogram& stream_lag_;
  prometheus::Histogram& real_time_factor_;
  prometheus::Histogram& recognize_duration_;
  prometheus::Histogram& step_duration_;
  prometheus::Histogram& step_sequences_;
  prometheus::Histogram& step_tokens_;
  prometheus::Counter& step_failures_;
  prometheus::Counter& decode_graph_steps_;
  prometheus::Counter& encoder_tokens_;
  prometheus::Counter& prefill_tokens_;

  absl::Mutex mu_;
  std::function<engine::EngineStats()> engine_stats_ ABSL_GUARDED_BY(mu_);
};

// One call's metrics: admission, limits, its end (once) and, for streams, the observations derived
// from its audio and events (first-partial latency counts from the arrival of the utterance's
// first audio). With a null Metrics every method does nothing. Owned by the call; Audio() on the
// reader thread, the rest from any thread (internally locked).
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
  // The call's final code, counted once; CANCELLED after `deadline` counts as DEADLINE_EXCEEDED.
  void Ended(grpc::StatusCode code, std::chrono::system_clock::time_point deadline =
                                        std::chrono::system_clock::time_point::max())
      ABSL_LOCKS_EXCLUDED(mu_);
  // `seconds` of decoded audio handed to the session at `arrival`.
  void Audio(double seconds, absl::Time arrival) ABSL_LOCKS_EXCLUDED(mu_);
  // An event the session sent: transcripts, warnings, the summary.
  void Event(const streaming::SessionEvent& event) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  Metrics* const metrics_;
  const RpcMethod method_;
  const absl::Time start_time_ = absl::Now();
  absl::Mutex mu_;
  double stream_offset_seconds_ ABSL_GUARDED_BY(mu_) = 0;
  bool admitted_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  double received_seconds_ ABSL_GUARDED_BY(mu_) = 0;   // without stream_offset
  double processed_seconds_ ABSL_GUARDED_BY(mu_) = 0;  // without stream_offset
  int64_t last_partial_utterance_ ABSL_GUARDED_BY(mu_) = -1;
  // (end of the audio received so far, its arrival time), oldest first; bounded.
  std::deque<std::pair<double, absl::Time>> arrivals_ ABSL_GUARDED_BY(mu_);
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_METRICS_H_
