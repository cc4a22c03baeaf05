// Helpers of speechllm-model-timing (model_timing.cc, decode_timing.cc): the median wall and host
// times of a device computation, and decoder batches of equal sequences over contiguous KV blocks.
// The benchmark's main thread only.
#ifndef SPEECHLLM_TOOLS_BENCH_MODEL_TIMING_UTIL_H_
#define SPEECHLLM_TOOLS_BENCH_MODEL_TIMING_UTIL_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>

#include "engine/model/decoder_batch.h"

namespace speechllm::bench {

// Median wall time of `fn` in ms; each run ends with a host read, which synchronises the device.
double TimeMs(const std::function<at::Tensor()>& fn, int reps);
// Median host time of `fn` up to its return, the device idle at each start: the time to enqueue
// its work. Close to TimeMs, the computation is bound by the host's launches (a CUDA graph would
// pay); far below it, by the device.
double HostEnqueueMs(const std::function<at::Tensor()>& fn, int reps);

// `count` sequences that each add `new_tokens` after `cached` tokens, each in a run of blocks of
// its own: sequence b holds blocks [b * n, (b + 1) * n) of the pool, n = BlocksPerSequence().
int64_t BlocksPerSequence(int64_t new_tokens, int64_t cached, int64_t block_size);
engine::DecoderBatch ContiguousBatch(int count, int64_t new_tokens, int64_t cached,
                                     int64_t block_size);

}  // namespace speechllm::bench

#endif  // SPEECHLLM_TOOLS_BENCH_MODEL_TIMING_UTIL_H_
