// OpenEmbeddingCache: the server's embedding cache (ARCHITECTURE.md 8) from its configuration, or
// none without --embedding_cache_dir. Called once by main.cc after the model loads; the cache it
// returns is owned by main and outlives every call, and is destroyed before the engine.
#ifndef SPEECHLLM_SERVER_EMBEDDING_CACHE_SETUP_H_
#define SPEECHLLM_SERVER_EMBEDDING_CACHE_SETUP_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/server_config.h"
#include "streaming/embedding_cache.h"

namespace speechllm::server {

// Null (OK) when config.embedding_cache_dir is empty. Otherwise the fingerprint of `model_dir`'s
// checkpoint goes into every key; an error when the directory cannot be created or the checkpoint
// read. Prints one start-up line (entries found, their size, the cap).
absl::StatusOr<std::unique_ptr<streaming::EmbeddingCache>> OpenEmbeddingCache(
    const ServerConfig& config, const std::string& model_dir, int64_t hidden_size,
    streaming::EmbeddingCacheObserver* observer);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_EMBEDDING_CACHE_SETUP_H_
