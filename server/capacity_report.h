// The shape of a default stream, the check that the longest stream fits the model, and
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

// What a stream with the API's defaults reserves (20 s utterances, no context) with
// `max_new_tokens` and `suffix_tokens` after the audio; streams reserve their own shape at
// admission, and grow it for a longer context.
engine::SequenceConfig DefaultStreamShape(const engine::Engine& engine, int max_new_tokens,
                                          int64_t suffix_tokens);

// INVALID_ARGUMENT, naming the flags to lower, unless the longest stream the API allows (30 s
// utterances, `max_suffix_tokens` after the audio, `stream_shape`'s new tokens) fits the model's
// positions: a step past them would fail every stream in it.
absl::Status CheckLongestStreamFits(const engine::Engine& engine,
                                    const engine::SequenceConfig& stream_shape,
                                    int64_t max_suffix_tokens);

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
