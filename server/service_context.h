// ServiceContext: what every call handler of the server shares: the configuration, the engine, the
// output dispatcher, the front end, the tokenizer, the prompt source, the stream registry and the
// metrics. Built by main.cc, which owns every member and outlives all calls; read-only and
// safe on any thread.
#ifndef SPEECHLLM_SERVER_SERVICE_CONTEXT_H_
#define SPEECHLLM_SERVER_SERVICE_CONTEXT_H_

#include <atomic>
#include <cstdint>

#include "engine/engine.h"
#include "engine/model/log_mel.h"
#include "engine/model/tokenizer/tokenizer.h"
#include "server/metrics.h"
#include "server/prompt_source.h"
#include "server/server_config.h"
#include "server/stream_registry.h"
#include "streaming/embedding_cache.h"
#include "streaming/output_dispatcher.h"

namespace speechllm::server {

struct ServiceContext {
  ServerConfig config;
  engine::Engine* engine = nullptr;
  streaming::OutputDispatcher* dispatcher = nullptr;
  const engine::LogMel* log_mel = nullptr;
  const engine::tokenizer::Tokenizer* tokenizer = nullptr;  // null: results carry no text
  const PromptSource* prompt = nullptr;
  StreamRegistry* registry = nullptr;
  Metrics* metrics = nullptr;                            // null: nothing is counted (tests)
  streaming::EmbeddingCache* embedding_cache = nullptr;  // null: no embedding cache
  std::atomic<uint64_t> session_counter{0};
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_SERVICE_CONTEXT_H_
