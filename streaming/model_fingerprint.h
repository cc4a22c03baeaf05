// ModelFingerprint: the model id inside every embedding cache key (ARCHITECTURE.md 8), so that a
// cache directory never serves one checkpoint's embeddings to another. Read once by the server's
// main thread at start-up.
#ifndef SPEECHLLM_STREAMING_MODEL_FINGERPRINT_H_
#define SPEECHLLM_STREAMING_MODEL_FINGERPRINT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace speechllm::streaming {

// Hex SHA-256 over `projector` (the variant), config.json, and for every *.safetensors file of
// `model_dir` in name order: its name, size, JSON header and 16 samples of 64 KiB spread over its
// tensor data. Headers alone hold only names, dtypes and shapes, which a fine-tune shares with its
// base; the samples tell such checkpoints apart while reading about 1 MiB per file. NOT_FOUND when
// the directory holds no safetensors file; DATA_LOSS for a file too short for its header.
absl::StatusOr<std::string> ModelFingerprint(const std::string& model_dir,
                                             absl::string_view projector);

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_MODEL_FINGERPRINT_H_
