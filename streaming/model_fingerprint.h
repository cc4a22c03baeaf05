// ModelFingerprint: the model id inside every embedding cache key (ARCHITECTURE.md 8), so that a
// cache directory or a shared Redis never serves embeddings that another model, or the same one
// in another precision, would compute differently. Read once by the server's main thread at
// start-up.
#ifndef SPEECHLLM_STREAMING_MODEL_FINGERPRINT_H_
#define SPEECHLLM_STREAMING_MODEL_FINGERPRINT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace speechllm::streaming {

// Bumped whenever the encoder's or projector's arithmetic changes (a fused kernel, another
// summation order), so that replicas of two versions never share rows.
inline constexpr int kEmbeddingNumericsVersion = 1;

// Hex SHA-256 over `projector` (the variant), config.json, and every byte, name, dtype and shape
// of the tensors the embeddings come from: `audio_tower.*` and `multi_modal_projector.*` of the
// checkpoint in `model_dir` (one file or shards). The language model's weights do not change the
// embeddings and are not read. About 1.3 GB for Qwen2-Audio-7B, hashed at the speed of OpenSSL's
// SHA-256. NOT_FOUND without a checkpoint; the checkpoint's errors (DATA_LOSS for a damaged
// file); FAILED_PRECONDITION when it holds no such tensor.
absl::StatusOr<std::string> ModelFingerprint(const std::string& model_dir,
                                             absl::string_view projector);

// The model id of the cache keys: the fingerprint, the numerics version and how the model runs
// (`dtype` as computed, e.g. "bfloat16"; `device_kind`, "cpu" or "cuda"), since rows computed in
// bfloat16 on a card differ from float32 rows on a CPU.
std::string EmbeddingModelId(absl::string_view fingerprint, absl::string_view dtype,
                             absl::string_view device_kind);

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_MODEL_FINGERPRINT_H_
