// DescribeCapacity: the start-up lines that say how many streams of the default shape the decoder
// KV cache and the encoder K/V budget hold, and which flag raises the one that binds; and the
// start-up refusal of a budget that holds no stream. Called once by the server's main thread after
// the engine starts.
#ifndef SPEECHLLM_SERVER_CAPACITY_REPORT_H_
#define SPEECHLLM_SERVER_CAPACITY_REPORT_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

#include "engine/engine.h"

namespace speechllm::server {

// Lines (each ending in '\n') for streams shaped `stream_shape` (what a stream with the API's
// defaults reserves); `kv_cache_mb` as given, `max_streams` the registry's bound.
std::string DescribeCapacity(const engine::Engine& engine,
                             const engine::SequenceConfig& stream_shape, int64_t kv_cache_mb,
                             int max_streams);

// FAILED_PRECONDITION when the encoder K/V budget (`encoder_kv_cache_mb` as given, or the
// automatic one that the device's free memory lowered) cannot hold one stream of `stream_shape`;
// the message names the budget's source and what a stream needs.
absl::Status CheckEncoderBudgetHoldsAStream(const engine::Engine& engine,
                                            const engine::SequenceConfig& stream_shape,
                                            int64_t encoder_kv_cache_mb);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_CAPACITY_REPORT_H_
