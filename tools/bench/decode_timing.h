// The decode sections of speechllm-model-timing: one decode step at a batch size and context
// (eager, replayed as a CUDA graph, and on CUDA its device time part by part), the decoder's weight
// bytes and the device's copy bandwidth (the batch-1 yardstick), and every weight matrix alone at
// batch 1 and 16. The benchmark's main thread only.
#ifndef SPEECHLLM_TOOLS_BENCH_DECODE_TIMING_H_
#define SPEECHLLM_TOOLS_BENCH_DECODE_TIMING_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <string>

#include "engine/model/qwen2_audio_model.h"
#include "tools/bench/bench_stats.h"

namespace speechllm::bench {

// One token for each of `batch_size` sequences holding `context` cached tokens:
// <prefix>_ms_per_step and _tokens_per_s (eager), _graph_ms_per_step and _graph_tokens_per_s (a
// CUDA graph replay with the copy of its inputs), _part_<name>_us and _parts_sum_us (CUDA,
// Decoder::TimeStepParts); a graph or part timing the runtime refuses becomes <prefix>_graph_error
// / _parts_error.
void TimeDecodeStep(const engine::Qwen2AudioModel& model, int batch_size, int64_t context,
                    const std::string& prefix, int reps, JsonWriter* json);

// Bytes one decode step reads from the decoder's weights: every layer, the final norm and the
// lm_head (the embedding table only gives a few rows, unless the lm_head is tied to it).
int64_t DecodeWeightBytes(const engine::Decoder& decoder);

// Device copy bandwidth, bytes read plus bytes written per second, of a 1 GiB copy (256 MiB on
// the CPU): the memory speed a decode step's weight reads can reach.
double CopyBytesPerSecond(at::Device device, int reps);

// Every weight matrix of the decoder (the lm_head's included; the embedding table only when it is
// the lm_head) applied to `rows` rows with one at::linear each: the weight reads of a decode step
// without its attention and element-wise kernels. Their bandwidth, against the copy bandwidth,
// says how close the small-batch GEMMs come to the memory speed: linears_bN_ms, linears_bN_GBps.
void TimeLinears(const engine::Qwen2AudioModel& model, int reps, JsonWriter* json);

}  // namespace speechllm::bench

#endif  // SPEECHLLM_TOOLS_BENCH_DECODE_TIMING_H_
