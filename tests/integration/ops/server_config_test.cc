// Unit tests (label unit) of ServerConfig's rules, checked at start before the model loads: TLS
// and token files, defaults every call would be refused for, and the plaintext health port.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server_config.h"

namespace speechllm::server {
namespace {

using ::testing::HasSubstr;

TEST(ServerConfigTest, TlsAndTokenRules) {
  ServerConfig config;
  EXPECT_TRUE(config.Validate().ok());
  config.token_file = "/tokens";
  EXPECT_THAT(config.Validate().message(), HasSubstr("plaintext"));
  config.tls_cert_path = "/cert.pem";
  EXPECT_THAT(config.Validate().message(), HasSubstr("together"));
  config.tls_key_path = "/key.pem";
  config.tls_client_ca_path = "/ca.pem";
  EXPECT_TRUE(config.Validate().ok());
  config.max_receive_message_bytes = 1000;
  config.max_chunk_bytes = 500;
  EXPECT_TRUE(config.CheckMessageSize(1000).ok());
  const absl::Status too_large = config.CheckMessageSize(1001);
  EXPECT_EQ(too_large.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(config.transport_max_receive_message_bytes(), 2000);
  // 1 GiB is allowed; twice that does not fit gRPC's int (it used to wrap to a negative limit,
  // which gRPC ignores in favour of its 4 MiB default).
  config.max_receive_message_bytes = 1 << 30;
  config.max_chunk_bytes = 64 * 1024;
  EXPECT_TRUE(config.Validate().ok());
  EXPECT_EQ(config.transport_max_receive_message_bytes(), INT32_MAX);
}

// Server defaults that every call would be refused for (blaming the client's config) stop the
// server at start instead.
TEST(ServerConfigTest, DefaultsEveryCallWouldFailAreRefused) {
  ServerConfig config;
  config.default_chunk_ms = 50;
  EXPECT_THAT(config.Validate().message(), HasSubstr("--chunk_ms"));
  config.default_chunk_ms = 4000;
  config.max_buffered_audio_ms = 3000;
  EXPECT_THAT(config.Validate().message(), HasSubstr("at least --chunk_ms"));
  // A bound below the ACCURATE preset's 2 s chunks would refuse every ACCURATE call.
  config.default_chunk_ms = 1000;
  config.max_buffered_audio_ms = 1500;
  EXPECT_THAT(config.Validate().message(), HasSubstr("ACCURATE"));
  config.max_buffered_audio_ms = 2000;
  EXPECT_TRUE(config.Validate().ok());
  config.max_buffered_audio_ms = 10000;
  EXPECT_TRUE(config.Validate().ok());
  config.max_recognize_audio = absl::ZeroDuration();
  EXPECT_THAT(config.Validate().message(), HasSubstr("max_recognize_audio"));
  // A negative grace would end every open stream at once on SIGTERM.
  config.max_recognize_audio = absl::Minutes(5);
  config.drain_grace = absl::Seconds(-5);
  EXPECT_THAT(config.Validate().message(), HasSubstr("drain_grace_s must be >= 0"));
  config.drain_grace = absl::ZeroDuration();
  EXPECT_TRUE(config.Validate().ok()) << config.Validate();
}

// The hardened set-up: a token on every main-port call, Health included, and plaintext probes on
// a pod-local port. It was refused, which left Health open to unauthenticated clients on the main
// port (where gRPC buffers a message of up to 2 x max_receive_message_bytes before any handler).
TEST(ServerConfigTest, APlaintextHealthPortLeavesTheMainPortsHealthToTheToken) {
  ServerConfig config;
  config.tls_cert_path = "/cert.pem";
  config.tls_key_path = "/key.pem";
  config.token_file = "/tokens";
  config.health_listen_address = "127.0.0.1:9999";
  EXPECT_TRUE(config.Validate().ok());
  config.auth_exempt_health = false;
  EXPECT_TRUE(config.Validate().ok()) << config.Validate();
}

// The health port may not take the gRPC port: the same port on the same or a wildcard host.
// Port 0 on both picks two free ports (it was refused as "the same address").
TEST(ServerConfigTest, TheHealthPortMustNotTakeTheListeningPort) {
  for (const auto& [listen, health, ok] : std::vector<std::tuple<std::string, std::string, bool>>{
           {"127.0.0.1:0", "127.0.0.1:0", true},
           {"127.0.0.1:8081", "127.0.0.1:8082", true},
           {"127.0.0.1:8081", "10.0.0.1:8081", true},
           {"127.0.0.1:8081", "127.0.0.1:8081", false},
           {"0.0.0.0:8081", "127.0.0.1:8081", false},
           {"[::1]:8081", "[::]:8081", false},
           // localhost is 127.0.0.1 and ::1 (the metrics port binds both), not 10.0.0.1.
           {"127.0.0.1:8081", "localhost:8081", false},
           {"localhost:8081", "[::1]:8081", false},
           {"localhost:8081", "10.0.0.1:8081", true},
           {"127.0.0.1:8081", "[::1]:8081", true}}) {
    ServerConfig config;
    config.listen_address = listen;
    config.health_listen_address = health;
    const absl::Status status = config.Validate();
    EXPECT_EQ(status.ok(), ok) << listen << " / " << health << ": " << status;
    if (!ok) {
      EXPECT_THAT(status.message(), HasSubstr("takes the port of listen"));
    }
  }
}

// --metrics_listen=localhost:P binds 127.0.0.1:P too, so it takes --listen=127.0.0.1:P; that used
// to pass the check and fail at gRPC's bind, after the model load.
TEST(ServerConfigTest, TheMetricsPortOnLocalhostMustNotTakeTheListeningPort) {
  ServerConfig config;
  config.listen_address = "127.0.0.1:9464";
  config.metrics_listen_address = "localhost:9464";
  const absl::Status status = config.Validate();
  EXPECT_FALSE(status.ok());
  EXPECT_THAT(status.message(), HasSubstr("takes the port of 127.0.0.1:9464"));
  config.metrics_listen_address = "localhost:9465";
  EXPECT_TRUE(config.Validate().ok()) << config.Validate();
  // No host would bind the unauthenticated endpoint on every interface.
  for (const char* hostless : {"[]:9465", ":9465"}) {
    config.metrics_listen_address = hostless;
    EXPECT_THAT(config.Validate().message(), HasSubstr("names no host")) << hostless;
  }
  // gRPC cannot parse ":50051" at all; it failed only after the model had loaded.
  config.metrics_listen_address = "localhost:9465";
  config.listen_address = ":50051";
  EXPECT_THAT(config.Validate().message(), HasSubstr("listen: \":50051\" names no host"));
  config.listen_address = "127.0.0.1:50051";
  config.health_listen_address = ":8081";
  EXPECT_THAT(config.Validate().message(), HasSubstr("health_listen: \":8081\" names no host"));
}

// The embedding cache's settings: a size and threads in range; Redis only behind a disk directory,
// at a HOST:PORT, with a TTL.
TEST(ServerConfigTest, EmbeddingCacheSettingsAreChecked) {
  ServerConfig config;
  config.embedding_cache_mb = 0;
  EXPECT_THAT(config.Validate().message(), HasSubstr("embedding_cache_mb"));
  config = ServerConfig{};
  config.cache_threads = 0;
  EXPECT_THAT(config.Validate().message(), HasSubstr("cache_threads"));
  config = ServerConfig{};
  config.embedding_cache_redis = "127.0.0.1:6379";
  EXPECT_THAT(config.Validate().message(), HasSubstr("needs embedding_cache_dir"));
  config.embedding_cache_dir = "/tmp/cache";
  EXPECT_TRUE(config.Validate().ok()) << config.Validate();
  for (const char* bad : {"redis", ":6379", "host:0", "host:70000"}) {
    config.embedding_cache_redis = bad;
    EXPECT_THAT(config.Validate().message(), HasSubstr("HOST:PORT")) << bad;
  }
  config.embedding_cache_redis = "redis.fleet:6379";
  config.embedding_cache_redis_ttl_s = 0;
  EXPECT_THAT(config.Validate().message(), HasSubstr("ttl"));
}

}  // namespace
}  // namespace speechllm::server
