// AppendEngineFamilies: the engine's counters and gauges (Engine::stats(): steps, busy, compute
// and device-wait time, tokens, drafts, prefix hits, active sequences, KV blocks and encoder K/V
// positions) as Prometheus families, built at scrape time and never cached. Called by
// Metrics::Scrape on the scraping thread.
#ifndef SPEECHLLM_SERVER_ENGINE_METRICS_H_
#define SPEECHLLM_SERVER_ENGINE_METRICS_H_

#include <vector>

#include <prometheus/metric_family.h>

#include "engine/engine.h"

namespace speechllm::server {

void AppendEngineFamilies(const engine::EngineStats& stats,
                          std::vector<prometheus::MetricFamily>* out);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_ENGINE_METRICS_H_
