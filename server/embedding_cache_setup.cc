#include "server/embedding_cache_setup.h"

#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/host_port.h"
#include "streaming/model_fingerprint.h"

namespace speechllm::server {

absl::StatusOr<std::unique_ptr<streaming::EmbeddingCache>> OpenEmbeddingCache(
    const ServerConfig& config, const std::string& model_dir, const engine::ModelConfig& model,
    const engine::RuntimeOptions& runtime, streaming::EmbeddingCacheObserver* observer) {
  if (config.embedding_cache_dir.empty()) return nullptr;
  // The projector is the linear one (design_notes.md): its weights are in the checkpoint.
  absl::StatusOr<std::string> fingerprint = streaming::ModelFingerprint(model_dir, "linear");
  if (!fingerprint.ok()) {
    return absl::Status(fingerprint.status().code(),
                        absl::StrCat("--embedding_cache_dir: ", fingerprint.status().message()));
  }
  streaming::EmbeddingCacheConfig cache_config;
  cache_config.dir = config.embedding_cache_dir;
  cache_config.max_bytes = config.embedding_cache_mb << 20;
  cache_config.threads = config.cache_threads;
  cache_config.model_id =
      streaming::EmbeddingModelId(*fingerprint, runtime.dtype.empty() ? model.dtype : runtime.dtype,
                                  absl::StartsWith(runtime.device, "cuda") ? "cuda" : "cpu");
  cache_config.hidden_size = model.text.hidden_size;
  if (!config.embedding_cache_redis.empty()) {  // ServerConfig::Validate checked the address
    const absl::StatusOr<HostPort> address = ParseHostPort(config.embedding_cache_redis);
    if (!address.ok()) return address.status();
    streaming::RedisStoreConfig redis;
    redis.host = address->host;
    redis.port = address->port;
    redis.ttl = absl::Seconds(config.embedding_cache_redis_ttl_s);
    cache_config.redis = redis;
  }
  absl::StatusOr<std::unique_ptr<streaming::EmbeddingCache>> cache =
      streaming::EmbeddingCache::Open(cache_config, observer);
  if (!cache.ok()) return cache.status();
  std::cerr << "speechllm-server: embedding cache in " << config.embedding_cache_dir << ": "
            << (*cache)->disk().num_entries() << " entries, "
            << ((*cache)->disk().total_bytes() >> 20) << " of " << config.embedding_cache_mb
            << " MiB; model fingerprint " << fingerprint->substr(0, 16)
            << (config.embedding_cache_redis.empty()
                    ? std::string()
                    : absl::StrCat("; shared through Redis at ", config.embedding_cache_redis))
            << std::endl;
  return cache;
}

}  // namespace speechllm::server
