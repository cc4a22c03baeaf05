// OfflineTranscriber: transcribes one whole clip the way Hugging Face does (valid-prefix encoding,
// prompt with the audio placeholder expanded, greedy decoding with a KV cache), behind a torch-free
// interface for command-line tools and the reference side of tests. Not thread-safe: one caller
// thread at a time (it owns the model and runs it on the calling thread).
#ifndef SPEECHLLM_ENGINE_MODEL_OFFLINE_TRANSCRIBER_H_
#define SPEECHLLM_ENGINE_MODEL_OFFLINE_TRANSCRIBER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/model/model_config.h"
#include "engine/model/runtime_options.h"

namespace speechllm::engine {

struct OfflineResult {
  std::vector<int64_t> prompt_ids;       // with the placeholder expanded
  std::vector<int64_t> generated_ids;    // including a final stop token when one was produced
  std::vector<float> margins;            // top-1 minus top-2 logit of each generated token
  std::vector<float> log_probabilities;  // of each generated token (log-softmax, float32)
  int64_t num_audio_tokens = 0;
  double features_ms = 0, encoder_ms = 0, prefill_ms = 0, decode_ms = 0;
  // Forward passes in decode_ms: one fewer than the generated tokens (the first comes from the
  // prefill, and the last one's logits are not computed).
  int64_t decode_steps = 0;
};

class OfflineTranscriber {
 public:
  static absl::StatusOr<std::unique_ptr<OfflineTranscriber>> Create(const std::string& model_dir,
                                                                    const RuntimeOptions& options);
  ~OfflineTranscriber();

  const ModelConfig& config() const;

  // `samples`: mono float audio at config().features.sample_rate_hz (30 s at most are used).
  // `prompt_ids` holds one <|AUDIO|> placeholder or exactly as many as the clip yields. Decodes
  // greedily until a stop token or `max_new_tokens`. INVALID_ARGUMENT for audio too short for one
  // token or a bad prompt; INTERNAL for a torch failure.
  absl::StatusOr<OfflineResult> Transcribe(absl::Span<const float> samples,
                                           const std::vector<int64_t>& prompt_ids,
                                           int max_new_tokens);

 private:
  struct Impl;
  explicit OfflineTranscriber(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_OFFLINE_TRANSCRIBER_H_
