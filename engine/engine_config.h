// EngineConfig: how one engine (one model on one device) is sized: sequences, KV blocks, step
// budget and prompt limits used for admission. Plain data with Validate()/ToString(); built by the
// server's main (or a tool) and copied into the Engine.
#ifndef SPEECHLLM_ENGINE_ENGINE_CONFIG_H_
#define SPEECHLLM_ENGINE_ENGINE_CONFIG_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace speechllm::engine {

struct EngineConfig {
  int max_num_sequences = 64;      // admitted streams at once
  int64_t max_step_tokens = 2048;  // prefill + decode tokens one step may process
  // Encoder positions (20 ms of audio each) one step may encode: chunks and exact-final re-encodes
  // beyond it wait for the next step (the first always goes), so that many segments ending at
  // once spread over several steps instead of holding every stream's partials for one long step.
  int64_t max_step_encoder_positions = 6000;
  // Admission reserves, per sequence, the KV of a worst-case segment: max_prefix_tokens + 750 audio
  // tokens + max_suffix_tokens + the sequence's max_new_tokens_per_segment.
  int64_t max_prefix_tokens = 256;
  int64_t max_suffix_tokens = 64;
  int64_t max_audio_tokens_per_segment = 750;  // 30 s at 25 tokens/s
  // Memory for the encoder keys and values that block mode caches per segment: admission also
  // reserves 2 positions per reserved audio token (ARCHITECTURE.md 5). 0: as many as the streams
  // that the KV blocks admit can use, so that this never refuses a stream first (it is still
  // counted, logged and reported).
  int64_t encoder_kv_cache_bytes = 0;

  absl::Status Validate() const;
  std::string ToString() const;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_ENGINE_CONFIG_H_
