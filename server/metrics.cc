#include "server/metrics.h"

#include <algorithm>
#include <iterator>
#include <vector>

#include <prometheus/text_serializer.h>

#include "server/grpc_status.h"

namespace speechllm::server {
namespace {

using prometheus::Histogram;
using prometheus::MetricFamily;
using prometheus::MetricType;

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

// Label values, indexed by the enums' values.
constexpr const char* kMethodNames[] = {"StreamingRecognize", "Recognize", "GetCapabilities"};
constexpr const char* kCodeNames[] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};
constexpr const char* kReasonNames[] = {"max_streams", "kv", "draining"};
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

// A family of one unlabelled sample (or one per label value) built at scrape time.
MetricFamily Family(const std::string& name, const std::string& help, MetricType type) {
  MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  return family;
}

void AddSample(MetricFamily* family, double value, const std::string& label_name = "",
               const std::string& label_value = "") {
  prometheus::ClientMetric sample;
  if (!label_name.empty()) sample.label.push_back({label_name, label_value});
  if (family->type == MetricType::Counter) {
    sample.counter.value = value;
  } else {
    sample.gauge.value = value;
  }
  family->metric.push_back(std::move(sample));
}

// The engine's counters and gauges as families (read at scrape time, never cached).
void AppendEngineFamilies(const engine::EngineStats& stats, std::vector<MetricFamily>* out) {
  auto add = [out](const std::string& name, const std::string& help, MetricType type,
                   double value) {
    MetricFamily family = Family(name, help, type);
    AddSample(&family, value);
    out->push_back(std::move(family));
  };
  add("speechllm_engine_steps_total", "Engine steps executed.", MetricType::Counter,
      static_cast<double>(stats.steps));
  add("speechllm_engine_busy_seconds_total", "Time the engine spent executing steps.",
      MetricType::Counter, absl::ToDoubleSeconds(stats.busy_time));
  MetricFamily compute =
      Family("speechllm_engine_compute_seconds_total",
             "Step time by stage (the runner's breakdown of busy time).", MetricType::Counter);
  AddSample(&compute, absl::ToDoubleSeconds(stats.encoder_time), "stage", "encoder");
  AddSample(&compute, absl::ToDoubleSeconds(stats.decoder_time), "stage", "decoder");
  out->push_back(std::move(compute));
  add("speechllm_tokens_generated_total", "Tokens generated by the decoder.", MetricType::Counter,
      static_cast<double>(stats.tokens_generated));
  add("speechllm_prefix_cache_hits_total", "Segments that shared a cached prompt prefix.",
      MetricType::Counter, static_cast<double>(stats.prefix_hits));
  add("speechllm_engine_sequences_active", "Sequences (streams and calls) held by the engine.",
      MetricType::Gauge, static_cast<double>(stats.active_sequences));
  add("speechllm_kv_cache_blocks_used", "Decoder KV cache blocks in use.", MetricType::Gauge,
      static_cast<double>(stats.kv_blocks_used));
  add("speechllm_kv_cache_blocks_capacity", "Decoder KV cache blocks in the pool.",
      MetricType::Gauge, static_cast<double>(stats.kv_blocks_total));
  add("speechllm_kv_cache_blocks_reserved",
      "Decoder KV cache blocks reserved by admission (worst case of the admitted streams).",
      MetricType::Gauge, static_cast<double>(stats.kv_blocks_reserved));
  add("speechllm_kv_cache_blocks_peak", "Most decoder KV cache blocks ever in use at once.",
      MetricType::Gauge, static_cast<double>(stats.kv_blocks_peak));
  add("speechllm_kv_cache_usage_ratio", "Decoder KV cache blocks in use / blocks in the pool.",
      MetricType::Gauge,
      stats.kv_blocks_total > 0
          ? static_cast<double>(stats.kv_blocks_used) / static_cast<double>(stats.kv_blocks_total)
          : 0.0);
}

}  // namespace

Metrics::Metrics(const std::string& version)
    : registry_(std::make_shared<prometheus::Registry>()),
      requests_(CounterFamily(*registry_, "speechllm_requests_total",
                              "Ended calls by method and final gRPC status code.")),
      streams_active_(prometheus::BuildGauge()
                          .Name("speechllm_streams_active")
                          .Help("Open StreamingRecognize streams.")
                          .Register(*registry_)
                          .Add({})),
      admission_rejections_(CounterFamily(*registry_, "speechllm_admission_rejections_total",
                                          "Calls refused at admission, by reason.")),
      limits_(CounterFamily(*registry_, "speechllm_limit_exceeded_total",
                            "Times a server limit was hit, by limit (README: Running in "
                            "production).")),
      auth_failures_(CounterFamily(*registry_, "speechllm_auth_failures_total",
                                   "Calls refused with UNAUTHENTICATED, by reason.")),
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
      final_latency_(PlainHistogram(*registry_, "speechllm_final_latency_seconds",
                                    "Endpoint decision -> final result sent.",
                                    ResultLatencyBuckets())),
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
                                  "Engine steps that failed (their sequences failed).")),
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
    admission_rejections_.Add({{"reason", NameOf(kReasonNames, reason)}});
  }
  for (int i = 0; i <= static_cast<int>(Limit::kMaxReceiveMessageBytes); ++i) {
    limits_.Add({{"limit", NameOf(kLimitNames, static_cast<Limit>(i))}});
  }
  for (auto failure : {AuthFailure::kTokenMissing, AuthFailure::kTokenInvalid}) {
    auth_failures_.Add({{"reason", NameOf(kAuthNames, failure)}});
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
  if (!step.ok) step_failures_.Increment();
  if (step.decode_graph) decode_graph_steps_.Increment();
  encoder_tokens_.Increment(static_cast<double>(step.encoder_tokens));
  prefill_tokens_.Increment(static_cast<double>(step.prefill_tokens));
}

void Metrics::StreamOpened() { streams_active_.Increment(); }
void Metrics::StreamClosed() { streams_active_.Decrement(); }

void Metrics::CallEnded(RpcMethod method, grpc::StatusCode code) {
  requests_.Add({{"method", NameOf(kMethodNames, method)}, {"code", NameOf(kCodeNames, code)}})
      .Increment();
}

void Metrics::AdmissionRejected(AdmissionReason reason) {
  admission_rejections_.Add({{"reason", NameOf(kReasonNames, reason)}}).Increment();
}

void Metrics::LimitExceeded(Limit limit) {
  limits_.Add({{"limit", NameOf(kLimitNames, limit)}}).Increment();
}

void Metrics::AuthFailed(AuthFailure failure) {
  auth_failures_.Add({{"reason", NameOf(kAuthNames, failure)}}).Increment();
}

void Metrics::AudioReceived(double seconds) { audio_received_seconds_.Increment(seconds); }
void Metrics::AudioProcessed(double seconds) { audio_processed_seconds_.Increment(seconds); }
void Metrics::FirstPartialLatency(absl::Duration latency) {
  first_partial_latency_.Observe(absl::ToDoubleSeconds(latency));
}
void Metrics::FinalLatency(absl::Duration latency) {
  final_latency_.Observe(absl::ToDoubleSeconds(latency));
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
  std::function<engine::EngineStats()> source;
  {
    absl::MutexLock lock(&mu_);
    source = engine_stats_;
  }
  if (source) AppendEngineFamilies(source(), &families);
  return prometheus::TextSerializer().Serialize(families);
}

// ---- CallMetrics ----

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
  metrics_->AdmissionRejected(reason);
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
  if (code == grpc::StatusCode::CANCELLED && std::chrono::system_clock::now() >= deadline) {
    code = grpc::StatusCode::DEADLINE_EXCEEDED;  // gRPC reports the caller's deadline as a cancel
  }
  if (admitted_ && method_ == RpcMethod::kStreamingRecognize) metrics_->StreamClosed();
  metrics_->CallEnded(method_, code);
  if (method_ == RpcMethod::kRecognize && code == grpc::StatusCode::OK) {
    metrics_->RecognizeDuration(absl::Now() - start_time_);
  }
}

void CallMetrics::Audio(double seconds, absl::Time arrival) {
  if (metrics_ == nullptr || seconds <= 0) return;
  metrics_->AudioReceived(seconds);
  absl::MutexLock lock(&mu_);
  received_seconds_ += seconds;
  arrivals_.emplace_back(received_seconds_, arrival);
  constexpr size_t kMaxArrivals = 4096;  // ~7 min of 100 ms chunks without an utterance start
  if (arrivals_.size() > kMaxArrivals) arrivals_.pop_front();
}

void CallMetrics::Event(const streaming::SessionEvent& event) {
  if (metrics_ == nullptr) return;
  using Kind = streaming::SessionEvent::Kind;
  absl::MutexLock lock(&mu_);
  const double processed = event.audio_processed_seconds - stream_offset_seconds_;
  if (processed > processed_seconds_) {
    metrics_->AudioProcessed(processed - processed_seconds_);
    processed_seconds_ = processed;
  }
  if (event.kind == Kind::kWarning) {
    metrics_->WarningSent(event.warning);
  } else if (event.kind == Kind::kSummary) {
    if (event.summary.audio_total_seconds > 0) metrics_->RealTimeFactor(event.summary.compute_rtf);
  } else if (event.kind == Kind::kTranscript) {
    const streaming::TranscriptEvent& t = event.transcript;
    metrics_->StreamLag(
        std::max(0.0, event.audio_received_seconds - event.audio_processed_seconds));
    if (t.is_final) {
      // An empty Flush final has no processing: it never reached the engine.
      if (t.processing > absl::ZeroDuration())
        metrics_->FinalLatency(t.endpoint_wait + t.processing);
    } else if (t.utterance_id != last_partial_utterance_) {
      last_partial_utterance_ = t.utterance_id;
      const double start = t.utterance_start_seconds - stream_offset_seconds_;
      // Arrivals ending at or before the utterance start belong to earlier utterances.
      while (!arrivals_.empty() && arrivals_.front().first <= start) arrivals_.pop_front();
      if (!arrivals_.empty()) metrics_->FirstPartialLatency(absl::Now() - arrivals_.front().second);
    }
  }
}

}  // namespace speechllm::server
