// ServerConfig: the server's limits and defaults (documented in README "Running the server"),
// copied from flags by main.cc and read-only afterwards; every thread may read it.
#ifndef SPEECHLLM_SERVER_SERVER_CONFIG_H_
#define SPEECHLLM_SERVER_SERVER_CONFIG_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace speechllm::server {

// Encoder chunk of the LatencyMode presets (API.md 4.2); BALANCED uses --chunk_ms.
inline constexpr int kLowLatencyChunkMs = 480;
inline constexpr int kAccurateChunkMs = 2000;

struct ServerConfig {
  std::string listen_address = "127.0.0.1:50051";
  std::string model_name = "qwen2-audio";
  // BCP-47 codes of the languages the model transcribes (GetCapabilities; requests' hints must
  // name one; results report it).
  std::vector<std::string> language_codes = {"en"};
  int max_streams = 64;                            // open StreamingRecognize + Recognize calls
  static constexpr int kMaxStreamsLimit = 100000;  // max_streams' bound (Validate)
  int max_chunk_bytes = 64 * 1024;                 // one AudioChunk
  // The most audio one AudioChunk may decode to (CHUNK_TOO_LARGE beyond): Ogg Opus packets of two
  // bytes hold 120 ms each, so 64 KiB could otherwise expand to 40 minutes of samples. Real-time
  // clients send 20-100 ms per message; 120 s keeps 64 KiB of Opus down to 4.4 kbit/s.
  static constexpr int kMaxChunkAudioSeconds = 120;
  // Largest request message (Recognize carries whole files): above it a call ends with
  // RESOURCE_EXHAUSTED, counted. gRPC's transport refuses messages above twice this (the memory
  // bound) with the same code before any handler runs, uncounted.
  int max_receive_message_bytes = 64 << 20;
  absl::Duration idle_timeout = absl::Seconds(30);
  absl::Duration max_stream_duration = absl::Hours(1);
  int max_buffered_audio_ms = 10000;  // per-stream backlog before reads pause
  absl::Duration max_recognize_audio = absl::Minutes(5);
  int max_embedding_tokens = 750;  // rows of a Recognize AudioEmbeddings input (30 s at 25/s)
  absl::Duration drain_grace = absl::Seconds(30);
  absl::Duration retry_delay = absl::Seconds(1);  // RetryInfo on admission refusals
  int max_pending_responses = 512;  // unsent responses before a stream counts as not reading
  int default_chunk_ms = 1000;
  int max_new_tokens = 256;  // per utterance
  // Decoder loops of at least this many tokens are cut (engine::RepetitionGuardConfig); 0: off.
  int repetition_guard_tokens = 32;
  // Utterances with less speech than this (VAD, hangover not counted) get an empty final; 0: off.
  int silence_guard_min_speech_ms = 100;
  int max_context_chars = 1000;
  // Characters of a stream's committed text carried into its next utterance's prompt; 0: off.
  int carry_context_chars = 0;
  int max_phrases = 100;
  // Tokens the prompt may hold after the audio, where context and phrases go: the engine reserves
  // KV for this many per stream, and a context whose prompt would pass it is refused when it
  // arrives (config or Control.context), not at the next utterance.
  int max_prompt_suffix_tokens = 512;
  bool reflection = true;

  // Operations (README "Running in production").
  std::string metrics_listen_address;  // empty: no /metrics endpoint
  std::string health_listen_address;   // empty: none; else plaintext grpc.health.v1 only (probes)
  std::string tls_cert_path;           // PEM chain; with tls_key_path turns TLS on
  std::string tls_key_path;
  std::string tls_client_ca_path;  // PEM; requires and verifies client certificates (mTLS)
  std::string token_file;          // bearer tokens, one per line; needs TLS
  bool auth_exempt_health = true;
  bool auth_exempt_reflection = false;
  // The embedding cache (ARCHITECTURE.md 8): a directory (empty: no cache), its size cap and the
  // worker threads that do its I/O.
  std::string embedding_cache_dir;
  int64_t embedding_cache_mb = 1024;
  int cache_threads = 2;
  std::string embedding_cache_redis;  // HOST:PORT of a shared Redis store; empty: none
  int64_t embedding_cache_redis_ttl_s = 86400;

  int transport_max_receive_message_bytes() const {
    return static_cast<int>(
        std::min<int64_t>(2 * static_cast<int64_t>(max_receive_message_bytes), INT32_MAX));
  }
  // RESOURCE_EXHAUSTED (reason MESSAGE_TOO_LARGE, no RetryInfo) above max_receive_message_bytes.
  absl::Status CheckMessageSize(size_t message_bytes) const;
  bool tls() const { return !tls_cert_path.empty(); }
  bool auth_required() const { return !token_file.empty(); }

  absl::Status Validate() const;
  std::string ToString() const;
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_SERVER_CONFIG_H_
