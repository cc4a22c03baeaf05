#include "server/capacity_report.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "streaming/session.h"

namespace speechllm::server {

engine::SequenceConfig DefaultStreamShape(const engine::Engine& engine, int max_new_tokens,
                                          int64_t suffix_tokens) {
  engine::SequenceConfig shape;
  shape.max_new_tokens_per_segment = max_new_tokens;
  shape.reserved_audio_tokens = streaming::Session::MaxAudioTokensPerSegment(
      streaming::SessionConfig{}, engine.model_config().features);
  shape.reserved_suffix_tokens = suffix_tokens;
  return shape;
}

absl::Status CheckLongestStreamFits(const engine::Engine& engine,
                                    const engine::SequenceConfig& stream_shape,
                                    int64_t max_suffix_tokens) {
  engine::SequenceConfig longest = stream_shape;
  streaming::SessionConfig longest_stream;
  longest_stream.endpoint.max_utterance_ms = 30000;
  longest.reserved_audio_tokens =
      streaming::Session::MaxAudioTokensPerSegment(longest_stream, engine.model_config().features);
  longest.reserved_suffix_tokens = max_suffix_tokens;
  if (absl::Status s = engine.CheckPositions(longest); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(s.message(), ": lower --max_new_tokens or --max_prompt_suffix_tokens"));
  }
  return absl::OkStatus();
}

std::string DescribeCapacity(const engine::Engine& engine,
                             const engine::SequenceConfig& stream_shape, int64_t kv_cache_mb,
                             int max_streams) {
  const engine::EngineStats stats = engine.stats();
  const int64_t blocks_per_stream = engine.WorstCaseBlocks(stream_shape);
  const int64_t kv_streams = stats.kv_blocks_total / blocks_per_stream;
  std::string out = absl::StrCat("speechllm-server: KV cache of ", kv_cache_mb,
                                 " MiB: ", stats.kv_blocks_total, " blocks, ", blocks_per_stream,
                                 " reserved per stream (20 s utterances, no context), room for ",
                                 kv_streams, " such streams\n");
  int64_t streams = kv_streams;
  if (stats.encoder_kv_positions_total > 0) {
    const int64_t positions_per_stream = engine.EncoderPositions(stream_shape);
    const int64_t encoder_streams = stats.encoder_kv_positions_total / positions_per_stream;
    const double mib_per_position = stats.encoder_kv_bytes_per_position / 1048576.0;
    absl::StrAppend(
        &out, "speechllm-server: encoder K/V budget of ",
        static_cast<int64_t>(stats.encoder_kv_positions_total * mib_per_position),
        " MiB (--encoder_kv_cache_mb; 0: automatic, the most the streams the KV cache admits "
        "can reserve): ",
        stats.encoder_kv_positions_total, " positions, ", positions_per_stream,
        " reserved per stream (", static_cast<int64_t>(positions_per_stream * mib_per_position),
        " MiB), room for ", encoder_streams, " such streams\n");
    if (stats.encoder_kv_capped_by_memory) {
      absl::StrAppend(&out, "speechllm-server: the automatic encoder K/V budget is half of the ",
                      stats.free_memory_bytes >> 20,
                      " MiB the device had free after the weights and the KV cache (the rest is "
                      "for the steps), less than the KV cache's streams could cache\n");
    }
    streams = std::min(streams, encoder_streams);
  }
  if (streams < max_streams) {
    absl::StrAppend(&out, "speechllm-server: room for ", streams,
                    " streams, fewer than --max_streams=", max_streams,
                    ": the others are refused with KV_BUDGET (raise ",
                    streams == kv_streams ? "--kv_cache_mb" : "--encoder_kv_cache_mb", ")\n");
  }
  return out;
}

absl::Status CheckEncoderBudgetHoldsAStream(const engine::Engine& engine,
                                            const engine::SequenceConfig& stream_shape,
                                            int64_t encoder_kv_cache_mb) {
  const engine::EngineStats stats = engine.stats();
  const int64_t needed = engine.EncoderPositions(stream_shape);
  if (needed <= stats.encoder_kv_positions_total) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      stats.encoder_kv_capped_by_memory
          ? absl::StrCat("the automatic encoder K/V budget, half of the ",
                         stats.free_memory_bytes >> 20,
                         " MiB the device has free after the weights and the KV cache, ")
          : absl::StrCat("--encoder_kv_cache_mb=", encoder_kv_cache_mb, " "),
      "holds no stream: one needs ", needed, " encoder positions of ",
      stats.encoder_kv_bytes_per_position, " bytes",
      stats.encoder_kv_capped_by_memory ? " (lower --kv_cache_mb)" : ""));
}

}  // namespace speechllm::server
