#include "server/metrics.h"

#include <iterator>
#include <vector>

#include <prometheus/text_serializer.h>

#include "server/engine_metrics.h"

namespace speechllm::server {
namespace {

using prometheus::Histogram;
using prometheus::MetricFamily;

prometheus::Family<prometheus::Counter>& CounterFamily(prometheus::Registry& registry,
                                                       const std::string& name,
                                                       const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

prometheus::Counter& PlainCounter(prometheus::Registry& registry, const std::string& name,
                                  const std::string& help) {
  return CounterFamily(registry, name, help).Add({});
}

prometheus::Histogram& PlainHistogram(prometheus::Registry& registry, const std::string& name,
                                      const std::string& help,
                                      Histogram::BucketBoundaries buckets) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(registry).Add(
      {}, std::move(buckets));
}

// Seconds; shared by the first-partial and final latency histograms so they can be compared.
Histogram::BucketBoundaries ResultLatencyBuckets() {
  return {0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10};
}

// speechllm_final_latency_seconds{part}: the parts of API.md 5's finalization latency.
prometheus::Histogram& FinalLatencyPart(prometheus::Registry& registry, const std::string& part) {
  return prometheus::BuildHistogram()
      .Name("speechllm_final_latency_seconds")
      .Help(
          "Last word's audio reaching the server -> final sent (part total), split into "
          "endpoint_wait (-> endpoint decision) and processing (-> final sent).")
      .Register(registry)
      .Add({{"part", part}}, ResultLatencyBuckets());
}

// speechllm_engine_queue_wait_seconds{result}: from the input that starts an update to the engine
// step that begins it. Finer at the low end than the result latencies: a healthy engine queues
// for about one step (milliseconds to tens of milliseconds).
prometheus::Histogram& QueueWaitFor(prometheus::Registry& registry, const std::string& result) {
  return prometheus::BuildHistogram()
      .Name("speechllm_engine_queue_wait_seconds")
      .Help(
          "Audio chunk arrival (result partial) or endpoint decision (result final) -> start of "
          "the engine step that began the update.")
      .Register(registry)
      .Add({{"result", result}}, Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                             0.2, 0.3, 0.5, 1, 2, 5});
}

// Label values, indexed by the enums' values.
constexpr const char* kMethodNames[] = {"StreamingRecognize", "Recognize", "GetCapabilities"};
constexpr const char* kCodeNames[] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};
constexpr const char* kReasonNames[] = {"max_streams", "kv", "draining"};
constexpr const char* kCacheResultNames[] = {"hit", "miss", "error", "corrupt"};
constexpr const char* kLimitNames[] = {
    "max_streams",           "kv_budget",           "max_chunk_bytes",
    "idle_timeout",          "max_stream_duration", "max_buffered_audio",
    "max_pending_responses", "max_recognize_audio", "max_receive_message_bytes"};
constexpr const char* kAuthNames[] = {"token_missing", "token_invalid"};
constexpr const char* kWarningNames[] = {"BACKLOG",
                                         "FLOW_CONTROL",
                                         "AUDIO_CLIPPED",
                                         "SEQ_GAP",
                                         "SILENCE_SUPPRESSED",
                                         "REPETITION_SUPPRESSED",
                                         "CONTEXT_NOT_APPLIED"};
static_assert(std::size(kLimitNames) == static_cast<size_t>(Limit::kMaxReceiveMessageBytes) + 1);
static_assert(std::size(kWarningNames) ==
              static_cast<size_t>(streaming::SessionEvent::WarningCode::kContextNotApplied) + 1);

template <typename Enum, size_t N>
const char* NameOf(const char* const (&names)[N], Enum value) {
  const auto index = static_cast<size_t>(value);
  return index < N ? names[index] : "UNKNOWN";
}

}  // namespace

Metrics::Metrics(const std::string& version)
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(CounterFamily(*registry_, "speechllm_requests_total",
                              "Ended calls by method and final gRPC status code.")),
      streams_(CounterFamily(*registry_, "speechllm_streams_total",
                             "Ended StreamingRecognize streams by final gRPC status code.")),
      streams_active_(prometheus::BuildGauge()
                          .Name("speechllm_streams_active")
                          .Help("Open StreamingRecognize streams.")
                          .Register(*registry_)
                          .Add({})),
      ready_(prometheus::BuildGauge()
                 .Name("speechllm_ready")
                 .Help("1 while the health service answers SERVING; 0 while the model loads and "
                       "warms up, after engine steps failed, and while draining.")
                 .Register(*registry_)
                 .Add({})),
      streams_rejected_(CounterFamily(*registry_, "speechllm_streams_rejected_total",
                                      "StreamingRecognize streams refused at admission, by "
                                      "reason.")),
      recognize_rejected_(CounterFamily(*registry_, "speechllm_recognize_rejected_total",
                                        "Recognize calls refused at admission, by reason.")),
      limits_(CounterFamily(*registry_, "speechllm_limit_exceeded_total",
                            "Times a server limit was hit, by limit (README: Running in "
                            "production).")),
      auth_failures_(CounterFamily(*registry_, "speechllm_auth_failures_total",
                                   "Calls refused with UNAUTHENTICATED, by reason.")),
      embedding_cache_requests_(CounterFamily(
          *registry_, "speechllm_embedding_cache_requests_total",
          "Embedding cache lookups of exact finals, by store and result (a corrupt entry, an "
          "error or a full queue is a miss).")),
      warnings_(CounterFamily(*registry_, "speechllm_warnings_total",
                              "Warning messages sent to clients, by code.")),
      audio_received_seconds_(PlainCounter(*registry_, "speechllm_audio_seconds_total",
                                           "Audio received and accepted (decoded, 16 kHz).")),
      audio_processed_seconds_(PlainCounter(*registry_, "speechllm_audio_processed_seconds_total",
                                            "Audio reflected in results sent to clients.")),
      first_partial_latency_(PlainHistogram(
          *registry_, "speechllm_first_partial_latency_seconds",
          "First audio of an utterance reaching the server -> its first partial sent.",
          ResultLatencyBuckets())),
      final_latency_total_(FinalLatencyPart(*registry_, "total")),
      final_latency_endpoint_wait_(FinalLatencyPart(*registry_, "endpoint_wait")),
      final_latency_processing_(FinalLatencyPart(*registry_, "processing")),
      flush_latency_(PlainHistogram(*registry_, "speechllm_flush_latency_seconds",
                                    "Flush read -> its final sent.", ResultLatencyBuckets())),
      queue_wait_partial_(QueueWaitFor(*registry_, "partial")),
      queue_wait_final_(QueueWaitFor(*registry_, "final")),
      partial_erasure_(PlainHistogram(
          *registry_, "speechllm_partial_erasure_ratio",
          "Per utterance: words erased between consecutive displayed texts / words in the final.",
          {0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5})),
      committed_revisions_(PlainCounter(*registry_, "speechllm_committed_revisions_total",
                                        "Finals that do not start with the committed text sent "
                                        "before (must stay 0).")),
      commit_conflicts_(PlainCounter(*registry_, "speechllm_commit_conflicts_total",
                                     "Committed tokens the decoder disagreed with and was "
                                     "overruled.")),
      stream_lag_(PlainHistogram(*registry_, "speechllm_stream_lag_seconds",
                                 "Audio received - audio processed, sampled per transcript "
                                 "update.",
                                 {0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32})),
      real_time_factor_(PlainHistogram(*registry_, "speechllm_real_time_factor",
                                       "Engine time / audio time, per stream at its end.",
                                       {0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5})),
      recognize_duration_(PlainHistogram(*registry_, "speechllm_recognize_duration_seconds",
                                         "Recognize calls, admission -> response.",
                                         {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120})),
      step_duration_(PlainHistogram(
          *registry_, "speechllm_engine_step_duration_seconds", "Engine step execution time.",
          {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5})),
      step_sequences_(PlainHistogram(*registry_, "speechllm_engine_step_sequences",
                                     "Sequences per engine step (the batch size).",
                                     {1, 2, 4, 8, 16, 32, 64, 128})),
      step_tokens_(PlainHistogram(*registry_, "speechllm_engine_step_tokens",
                                  "Decoder tokens per engine step.",
                                  {1, 4, 16, 64, 256, 1024, 4096})),
      step_failures_(PlainCounter(*registry_, "speechllm_engine_step_failures_total",
                                  "Engine steps that failed a stream: all of theirs, or some "
                                  "alone when run again in parts.")),
      isolated_failures_(PlainCounter(*registry_, "speechllm_engine_isolated_failures_total",
                                      "Streams failed alone: their step failed and ran again in "
                                      "parts, and the others in it went on.")),
      step_reruns_(PlainCounter(*registry_, "speechllm_engine_step_reruns_total",
                                "Runner calls of failed steps run again in parts.")),
      decode_graph_steps_(PlainCounter(*registry_, "speechllm_engine_decode_graph_steps_total",
                                       "Engine steps whose decoder pass replayed a CUDA graph "
                                       "(decode-only steps on a GPU).")),
      encoder_tokens_(PlainCounter(*registry_, "speechllm_encoder_tokens_total",
                                   "Audio embeddings computed by the encoder (25 per second; "
                                   "exact finals re-encode).")),
      prefill_tokens_(PlainCounter(*registry_, "speechllm_prefill_tokens_total",
                                   "Prompt, audio and forced-prefix tokens written by the decoder "
                                   "(decode steps excluded).")) {
  prometheus::BuildGauge()
      .Name("speechllm_build_info")
      .Help("Build information; the value is always 1.")
      .Register(*registry_)
      .Add({{"version", version}})
      .Set(1);
  // Every labelled series exists from the start, so rate() and before/after checks see zeros.
  for (auto reason :
       {AdmissionReason::kMaxStreams, AdmissionReason::kKv, AdmissionReason::kDraining}) {
    streams_rejected_.Add({{"reason", NameOf(kReasonNames, reason)}});
    recognize_rejected_.Add({{"reason", NameOf(kReasonNames, reason)}});
  }
  for (int i = 0; i <= static_cast<int>(Limit::kMaxReceiveMessageBytes); ++i) {
    limits_.Add({{"limit", NameOf(kLimitNames, static_cast<Limit>(i))}});
  }
  for (auto failure : {AuthFailure::kTokenMissing, AuthFailure::kTokenInvalid}) {
    auth_failures_.Add({{"reason", NameOf(kAuthNames, failure)}});
  }
  for (const char* store : {"disk", "redis"}) {
    for (const char* result : kCacheResultNames) {
      embedding_cache_requests_.Add({{"store", store}, {"result", result}});
    }
  }
  using Code = streaming::SessionEvent::WarningCode;
  for (auto code :
       {Code::kBacklog, Code::kFlowControl, Code::kAudioClipped, Code::kSeqGap,
        Code::kSilenceSuppressed, Code::kRepetitionSuppressed, Code::kContextNotApplied}) {
    warnings_.Add({{"code", NameOf(kWarningNames, code)}});
  }
  for (auto method :
       {RpcMethod::kStreamingRecognize, RpcMethod::kRecognize, RpcMethod::kGetCapabilities}) {
    requests_.Add({{"method", NameOf(kMethodNames, method)}, {"code", "OK"}});
  }
  streams_.Add({{"code", "OK"}});
}

Metrics::~Metrics() = default;

void Metrics::SetEngineStatsSource(std::function<engine::EngineStats()> source) {
  absl::MutexLock lock(&mu_);
  engine_stats_ = std::move(source);
}

void Metrics::OnStep(const engine::StepRecord& step) {
  step_duration_.Observe(absl::ToDoubleSeconds(step.duration));
  step_sequences_.Observe(static_cast<double>(step.sequences));
  step_tokens_.Observe(static_cast<double>(step.decoder_tokens));
  if (step.any_failed()) step_failures_.Increment();
  // Alone: the others in the step went on (a step that failed every stream is a failed step).
  if (step.ok) isolated_failures_.Increment(static_cast<double>(step.failed_sequences));
  step_reruns_.Increment(static_cast<double>(step.executions - 1));
  if (step.decode_graph) decode_graph_steps_.Increment();
  encoder_tokens_.Increment(static_cast<double>(step.encoder_tokens));
  prefill_tokens_.Increment(static_cast<double>(step.prefill_tokens));
}

void Metrics::SetReady(bool ready) { ready_.Set(ready ? 1 : 0); }

void Metrics::SetTlsCertificateExpiry(double unix_seconds) {
  prometheus::BuildGauge()
      .Name("speechllm_tls_certificate_expiry_timestamp_seconds")
      .Help("notAfter of the serving TLS certificate, read at start (Unix seconds).")
      .Register(*registry_)
      .Add({})
      .Set(unix_seconds);
}

void Metrics::StreamOpened() { streams_active_.Increment(); }
void Metrics::StreamClosed() { streams_active_.Decrement(); }

void Metrics::CallEnded(RpcMethod method, grpc::StatusCode code) {
  requests_.Add({{"method", NameOf(kMethodNames, method)}, {"code", NameOf(kCodeNames, code)}})
      .Increment();
  if (method == RpcMethod::kStreamingRecognize) {
    streams_.Add({{"code", NameOf(kCodeNames, code)}}).Increment();
  }
}

void Metrics::AdmissionRejected(RpcMethod method, AdmissionReason reason) {
  auto& family = method == RpcMethod::kStreamingRecognize ? streams_rejected_ : recognize_rejected_;
  family.Add({{"reason", NameOf(kReasonNames, reason)}}).Increment();
}

void Metrics::LimitExceeded(Limit limit) {
  limits_.Add({{"limit", NameOf(kLimitNames, limit)}}).Increment();
}

void Metrics::OnCacheRequest(const char* store, streaming::CacheResult result) {
  embedding_cache_requests_.Add({{"store", store}, {"result", NameOf(kCacheResultNames, result)}})
      .Increment();
}
void Metrics::AuthFailed(AuthFailure failure) {
  auth_failures_.Add({{"reason", NameOf(kAuthNames, failure)}}).Increment();
}

void Metrics::AudioReceived(double seconds) { audio_received_seconds_.Increment(seconds); }
void Metrics::AudioProcessed(double seconds) { audio_processed_seconds_.Increment(seconds); }
void Metrics::FirstPartialLatency(absl::Duration latency) {
  first_partial_latency_.Observe(absl::ToDoubleSeconds(latency));
}
void Metrics::FinalLatency(absl::Duration endpoint_wait, absl::Duration processing) {
  final_latency_total_.Observe(absl::ToDoubleSeconds(endpoint_wait + processing));
  final_latency_endpoint_wait_.Observe(absl::ToDoubleSeconds(endpoint_wait));
  final_latency_processing_.Observe(absl::ToDoubleSeconds(processing));
}
void Metrics::FlushLatency(absl::Duration latency) {
  flush_latency_.Observe(absl::ToDoubleSeconds(latency));
}
void Metrics::QueueWait(bool is_final, absl::Duration wait) {
  (is_final ? queue_wait_final_ : queue_wait_partial_).Observe(absl::ToDoubleSeconds(wait));
}
void Metrics::PartialErasureRatio(double ratio) { partial_erasure_.Observe(ratio); }
void Metrics::CommittedRevision() { committed_revisions_.Increment(); }
void Metrics::CommitConflicts(int64_t count) {
  commit_conflicts_.Increment(static_cast<double>(count));
}
void Metrics::StreamLag(double seconds) { stream_lag_.Observe(seconds); }
void Metrics::RealTimeFactor(double ratio) { real_time_factor_.Observe(ratio); }
void Metrics::RecognizeDuration(absl::Duration duration) {
  recognize_duration_.Observe(absl::ToDoubleSeconds(duration));
}
void Metrics::WarningSent(streaming::SessionEvent::WarningCode code) {
  warnings_.Add({{"code", NameOf(kWarningNames, code)}}).Increment();
}

std::string Metrics::Scrape() {
  std::vector<MetricFamily> families = registry_->Collect();
  {
    // Read under the lock, so that SetEngineStatsSource(nullptr) returns only after a scrape that
    // is reading the engine has finished: main.cc clears the source before the engine goes.
    absl::MutexLock lock(&mu_);
    if (engine_stats_) AppendEngineFamilies(engine_stats_(), &families);
  }
  return prometheus::TextSerializer().Serialize(families);
}

}  // namespace speechllm::server
