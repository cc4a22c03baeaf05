#include "server/server_config.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/status_macros.h"
#include "server/grpc_status.h"
#include "server/host_port.h"
#include "server/languages.h"
#include "streaming/chunker.h"

namespace speechllm::server {
namespace {

// Whether two listening addresses ("host:port", "[v6]:port") would take the same port: the same
// port number on the same host or on a wildcard host. Port 0 picks a free port each time.
bool SamePort(const std::string& a, const std::string& b) {
  const absl::StatusOr<HostPort> parsed_a = ParseHostPort(a);
  const absl::StatusOr<HostPort> parsed_b = ParseHostPort(b);
  if (!parsed_a.ok() || !parsed_b.ok()) return a == b;
  if (parsed_a->port == 0 || parsed_b->port == 0 || parsed_a->port != parsed_b->port) return false;
  auto wildcard = [](const std::string& host) {
    return host.empty() || host == "0.0.0.0" || host == "::" || host == "*";
  };
  // "localhost" is bound on each of its addresses (the metrics port) or on one of them (gRPC).
  // Without resolving it, localhost:P and [::1]:P count as one port even where localhost is only
  // 127.0.0.1 (a refusal that could have worked, never a clash missed).
  auto loopback = [](const std::string& host) {
    return host == "localhost" || host == "127.0.0.1" || host == "::1";
  };
  const std::string& host_a = parsed_a->host;
  const std::string& host_b = parsed_b->host;
  return host_a == host_b || wildcard(host_a) || wildcard(host_b) ||
         (loopback(host_a) && loopback(host_b) && (host_a == "localhost" || host_b == "localhost"));
}

// A TCP listening address must read as HOST:PORT before the model loads, or a typo ("9464")
// surfaces only after minutes of loading and warm-up. gRPC's own forms (unix:PATH, ...) pass.
absl::Status CheckListenAddress(const std::string& address, const char* flag, bool grpc) {
  if (address.empty()) return absl::OkStatus();
  if (grpc && (absl::StartsWith(address, "unix:") || absl::StartsWith(address, "unix-abstract:") ||
               absl::StartsWith(address, "vsock:"))) {
    return absl::OkStatus();
  }
  const absl::StatusOr<HostPort> parsed = ParseHostPort(address);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": ", parsed.status().message()));
  }
  // The metrics responder binds what the host resolves to: no host ("[]:9464") would be every
  // interface, for an unauthenticated endpoint. gRPC cannot parse ":50051" at all, and said so
  // only after the model had loaded.
  if (parsed->host.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": \"", address, "\" names no host (0.0.0.0 or [::] binds every one)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ServerConfig::Validate() const {
  if (listen_address.empty()) return absl::InvalidArgumentError("listen address must not be empty");
  SPEECHLLM_RETURN_IF_ERROR(CheckListenAddress(listen_address, "listen", /*grpc=*/true));
  if (language_codes.empty()) return absl::InvalidArgumentError("--languages must name a language");
  for (const std::string& code : language_codes) {
    if (absl::Status s = CheckLanguageCode(code); !s.ok())
      return absl::InvalidArgumentError(absl::StrCat("--languages: ", s.message()));
  }
  SPEECHLLM_RETURN_IF_ERROR(CheckListenAddress(health_listen_address, "health_listen", true));
  SPEECHLLM_RETURN_IF_ERROR(CheckListenAddress(metrics_listen_address, "metrics_listen", false));
  // The engine's own bound is twice this, in an int.
  if (max_streams < 1 || max_streams > kMaxStreamsLimit) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_streams must be in [1, ", kMaxStreamsLimit, "]"));
  }
  if (max_chunk_bytes < 320 || max_chunk_bytes > max_receive_message_bytes) {
    return absl::InvalidArgumentError(
        "max_chunk_bytes must be in [320, max_receive_message_bytes]");
  }
  if (idle_timeout <= absl::ZeroDuration() || max_stream_duration <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("idle_timeout and max_stream_duration must be > 0");
  }
  // The backlog bound must hold one chunk of every preset, or each ACCURATE call would be refused.
  if (max_buffered_audio_ms < kAccurateChunkMs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_buffered_audio_ms must be >= ", kAccurateChunkMs, " (the ACCURATE preset's chunk)"));
  }
  // Checked per call as well, where a bad server default would refuse every call and blame the
  // client's config.
  if (absl::Status s = streaming::Chunker::ValidateChunkMs(default_chunk_ms); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--chunk_ms: ", s.message()));
  }
  if (max_buffered_audio_ms < default_chunk_ms) {
    return absl::InvalidArgumentError("max_buffered_audio_ms must be at least --chunk_ms");
  }
  if (drain_grace < absl::ZeroDuration())
    return absl::InvalidArgumentError("drain_grace_s must be >= 0");
  if (max_recognize_audio <= absl::ZeroDuration())
    return absl::InvalidArgumentError("max_recognize_audio must be > 0");
  if (max_pending_responses < 16)
    return absl::InvalidArgumentError("max_pending_responses must be >= 16");
  if (max_new_tokens < 1 || max_new_tokens > 4096)
    return absl::InvalidArgumentError("max_new_tokens must be in [1, 4096]");
  if (repetition_guard_tokens < 0 || repetition_guard_tokens > 4096)
    return absl::InvalidArgumentError("repetition_guard_tokens must be in [0, 4096]");
  if (carry_context_chars < 0 || carry_context_chars > 2000)
    return absl::InvalidArgumentError("carry_context_chars must be in [0, 2000]");
  if (silence_guard_min_speech_ms < 0 || silence_guard_min_speech_ms > 10000)
    return absl::InvalidArgumentError("silence_guard_min_speech_ms must be in [0, 10000]");
  if (max_prompt_suffix_tokens < 1 || max_prompt_suffix_tokens > 4096)
    return absl::InvalidArgumentError("max_prompt_suffix_tokens must be in [1, 4096]");
  if (max_embedding_tokens < 1)
    return absl::InvalidArgumentError("max_embedding_tokens must be >= 1");
  if (max_receive_message_bytes < 1 || max_receive_message_bytes > (1 << 30))
    return absl::InvalidArgumentError("max_receive_message_bytes must be in [1, 1 GiB]");
  if (tls_cert_path.empty() != tls_key_path.empty())
    return absl::InvalidArgumentError("tls_cert and tls_key must be given together");
  if (!tls_client_ca_path.empty() && !tls())
    return absl::InvalidArgumentError("tls_client_ca needs tls_cert and tls_key");
  if (!token_file.empty() && !tls()) {
    return absl::InvalidArgumentError(
        "token_file needs tls_cert and tls_key: bearer tokens must not travel in plaintext");
  }
  if (!health_listen_address.empty() && SamePort(health_listen_address, listen_address)) {
    return absl::InvalidArgumentError(absl::StrCat("health_listen (", health_listen_address,
                                                   ") takes the port of listen (", listen_address,
                                                   "): use another port"));
  }
  for (const std::string* other : {&listen_address, &health_listen_address}) {
    if (!metrics_listen_address.empty() && !other->empty() &&
        SamePort(metrics_listen_address, *other)) {
      return absl::InvalidArgumentError(absl::StrCat("metrics_listen (", metrics_listen_address,
                                                     ") takes the port of ", *other,
                                                     ": use another port"));
    }
  }
  if (embedding_cache_mb < 1 || embedding_cache_mb > (int64_t{1} << 30))
    return absl::InvalidArgumentError("embedding_cache_mb must be in [1, 2^30]");
  if (cache_threads < 1 || cache_threads > 64)
    return absl::InvalidArgumentError("cache_threads must be in [1, 64]");
  if (!embedding_cache_redis.empty()) {
    if (embedding_cache_dir.empty()) {
      return absl::InvalidArgumentError(
          "embedding_cache_redis needs embedding_cache_dir (Redis sits behind the disk store)");
    }
    absl::StatusOr<HostPort> redis = ParseHostPort(embedding_cache_redis);
    if (!redis.ok() || redis->host.empty() || redis->port == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "embedding_cache_redis must be HOST:PORT, not \"", embedding_cache_redis, "\""));
    }
    if (embedding_cache_redis_ttl_s < 1)
      return absl::InvalidArgumentError("embedding_cache_redis_ttl_s must be >= 1");
  }
  return absl::OkStatus();
}

absl::Status ServerConfig::CheckMessageSize(size_t message_bytes) const {
  if (message_bytes <= static_cast<size_t>(max_receive_message_bytes)) return absl::OkStatus();
  return WithReason(absl::ResourceExhaustedError(absl::StrCat(
                        "a message of ", message_bytes, " bytes exceeds max_receive_message_bytes ",
                        max_receive_message_bytes, ": send smaller messages")),
                    "MESSAGE_TOO_LARGE");
}

std::string ServerConfig::ToString() const {
  return absl::StrCat(
      "ServerConfig(listen=", listen_address, ", model=", model_name,
      ", languages=", absl::StrJoin(language_codes, ","), ", max_streams=", max_streams,
      ", max_chunk_bytes=", max_chunk_bytes, ", idle_timeout=", absl::FormatDuration(idle_timeout),
      ", max_stream_duration=", absl::FormatDuration(max_stream_duration),
      ", max_buffered_audio_ms=", max_buffered_audio_ms,
      ", max_recognize_audio=", absl::FormatDuration(max_recognize_audio),
      ", max_embedding_tokens=", max_embedding_tokens,
      ", drain_grace=", absl::FormatDuration(drain_grace), ", default_chunk_ms=", default_chunk_ms,
      ", max_new_tokens=", max_new_tokens, ", repetition_guard_tokens=", repetition_guard_tokens,
      ", silence_guard_min_speech_ms=", silence_guard_min_speech_ms,
      ", carry_context_chars=", carry_context_chars,
      ", max_prompt_suffix_tokens=", max_prompt_suffix_tokens, ", reflection=", reflection,
      ", max_receive_message_bytes=", max_receive_message_bytes,
      ", max_pending_responses=", max_pending_responses,
      ", metrics_listen=", metrics_listen_address, ", health_listen=", health_listen_address,
      ", tls=", tls(), ", mtls=", !tls_client_ca_path.empty(), ", auth=", auth_required(),
      ", auth_exempt_health=", auth_exempt_health,
      ", auth_exempt_reflection=", auth_exempt_reflection,
      ", embedding_cache_dir=", embedding_cache_dir, ", embedding_cache_mb=", embedding_cache_mb,
      ", cache_threads=", cache_threads, ", embedding_cache_redis=", embedding_cache_redis,
      ", embedding_cache_redis_ttl_s=", embedding_cache_redis_ttl_s, ")");
}

}  // namespace speechllm::server
