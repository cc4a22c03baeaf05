// OpenEmbeddingCache: the server's embedding cache (ARCHITECTURE.md 8) from its configuration, or
// none without --embedding_cache_dir. Called once by main.cc after the model loads; the cache it
// returns is owned by main and outlives every call, and is destroyed before the engine.
#ifndef SPEECHLLM_SERVER_EMBEDDING_CACHE_SETUP_H_
#define SPEECHLLM_SERVER_EMBEDDING_CACHE_SETUP_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/model/model_config.h"
#include "engine/model/runtime_options.h"
#include "server/server_config.h"
#include "streaming/embedding_cache.h"

namespace speechllm::server {

// Null (OK) when config.embedding_cache_dir is empty. Otherwise the fingerprint of `model_dir`'s
// encoder and projector, with the dtype and device kind the model runs in (`model`'s dtype unless
// `runtime` names one), goes into every key; an error when the directory cannot be created or the
// checkpoint read. Prints one start-up line (entries found, their size, the cap).
absl::StatusOr<std::unique_ptr<streaming::EmbeddingCache>> OpenEmbeddingCache(
    const ServerConfig& config, const std::string& model_dir, const engine::ModelConfig& model,
    const engine::RuntimeOptions& runtime, streaming::EmbeddingCacheObserver* observer);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_EMBEDDING_CACHE_SETUP_H_
