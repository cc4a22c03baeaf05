// Metrics: the server's Prometheus metrics (ARCHITECTURE.md 7, API.md 5) in a prometheus-cpp core
// registry behind typed methods, so call sites never spell a metric name (CallMetrics, in
// call_metrics.h, is one call's view of it). Engine counters are read from Engine::stats() at
// scrape time, per-step histograms arrive through engine::StepObserver. Owned by main.cc, outlives
// every call. Thread safety: every Metrics method may be called from any thread.
#ifndef SPEECHLLM_SERVER_METRICS_H_
#define SPEECHLLM_SERVER_METRICS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

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
#include "streaming/embedding_cache.h"
#include "streaming/session_event.h"

namespace speechllm::server {

enum class RpcMethod { kStreamingRecognize, kRecognize, kGetCapabilities };
// speechllm_streams_rejected_total{reason} (StreamingRecognize) and
// speechllm_recognize_rejected_total{reason} (Recognize).
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

class Metrics : public engine::StepObserver, public streaming::EmbeddingCacheObserver {
 public:
  // `version` is the value of speechllm_build_info{version}.
  explicit Metrics(const std::string& version);
  ~Metrics() override;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Engine counters and gauges are read through `source` at every scrape (none while it is null).
  // Setting null waits for a scrape that is calling the previous source.
  void SetEngineStatsSource(std::function<engine::EngineStats()> source) ABSL_LOCKS_EXCLUDED(mu_);
  // speechllm_ready: follows the health service's SERVING / NOT_SERVING (0 from the start).
  void SetReady(bool ready);
  // speechllm_tls_certificate_expiry_timestamp_seconds (only with TLS): the serving certificate's
  // notAfter. Certificates are read once at start, so a rotated Secret needs a restart.
  void SetTlsCertificateExpiry(double unix_seconds);
  // engine::StepObserver (engine loop thread).
  void OnStep(const engine::StepRecord& step) override;

  void StreamOpened();
  void StreamClosed();
  void CallEnded(RpcMethod method, grpc::StatusCode code);
  void AdmissionRejected(RpcMethod method, AdmissionReason reason);
  void LimitExceeded(Limit limit);
  void AuthFailed(AuthFailure failure);
  // speechllm_embedding_cache_requests_total{store,result} (the cache's worker threads).
  void OnCacheRequest(const char* store, streaming::CacheResult result) override;
  void AudioReceived(double seconds);
  void AudioProcessed(double seconds);
  void FirstPartialLatency(absl::Duration latency);
  // API.md 5: part "total" is endpoint_wait + processing.
  void FinalLatency(absl::Duration endpoint_wait, absl::Duration processing);
  void FlushLatency(absl::Duration latency);
  // speechllm_engine_queue_wait_seconds{result}: an update's wait for the engine step that began
  // it.
  void QueueWait(bool is_final, absl::Duration wait);
  void PartialErasureRatio(double ratio);
  void CommittedRevision();
  void CommitConflicts(int64_t count);
  void StreamLag(double seconds);
  void RealTimeFactor(double ratio);
  void RecognizeDuration(absl::Duration duration);
  void WarningSent(streaming::SessionEvent::WarningCode code);

  // Every metric in the Prometheus text exposition format 0.0.4 (metrics HTTP threads).
  std::string Scrape() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Counter>& streams_;
  prometheus::Gauge& streams_active_;
  prometheus::Gauge& ready_;
  prometheus::Family<prometheus::Counter>& streams_rejected_;
  prometheus::Family<prometheus::Counter>& recognize_rejected_;
  prometheus::Family<prometheus::Counter>& limits_;
  prometheus::Family<prometheus::Counter>& auth_failures_;
  prometheus::Family<prometheus::Counter>& embedding_cache_requests_;
  prometheus::Family<prometheus::Counter>& warnings_;
  prometheus::Counter& audio_received_seconds_;
  prometheus::Counter& audio_processed_seconds_;
  prometheus::Histogram& first_partial_latency_;
  prometheus::Histogram& final_latency_total_;
  prometheus::Histogram& final_latency_endpoint_wait_;
  prometheus::Histogram& final_latency_processing_;
  prometheus::Histogram& flush_latency_;
  prometheus::Histogram& queue_wait_partial_;
  prometheus::Histogram& queue_wait_final_;
  prometheus::Histogram& partial_erasure_;
  prometheus::Counter& committed_revisions_;
  prometheus::Counter& commit_conflicts_;
  prometheus::Histogram& stream_lag_;
  prometheus::Histogram& real_time_factor_;
  prometheus::Histogram& recognize_duration_;
  prometheus::Histogram& step_duration_;
  prometheus::Histogram& step_sequences_;
  prometheus::Histogram& step_tokens_;
  prometheus::Counter& step_failures_;
  prometheus::Counter& isolated_failures_;
  prometheus::Counter& step_reruns_;
  prometheus::Counter& decode_graph_steps_;
  prometheus::Counter& encoder_tokens_;
  prometheus::Counter& prefill_tokens_;

  absl::Mutex mu_;
  std::function<engine::EngineStats()> engine_stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_METRICS_H_
