// Unicode NFC normalisation of tokenizer input (Qwen2's tokenizer.json "normalizer": {"type":
// "NFC"}), on ICU's Normalizer2. Owned by the tokenizer library; stateless after creation and safe
// to call from any number of threads at once.
#ifndef SPEECHLLM_ENGINE_MODEL_TOKENIZER_NORMALIZER_H_
#define SPEECHLLM_ENGINE_MODEL_TOKENIZER_NORMALIZER_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace speechllm::engine::tokenizer {

// NFC of valid UTF-8 `text`. Returns true and leaves `*out` untouched when `text` is already in NFC
// (the common case, no copy); otherwise writes the normalised text to `*out` and returns false.
// INTERNAL if ICU fails (missing data).
absl::StatusOr<bool> NfcIfNeeded(absl::string_view text, std::string* out);

// Convenience wrapper: the NFC form of `text` as a new string.
absl::StatusOr<std::string> ToNfc(absl::string_view text);

// The longest run of consecutive code points with a non-zero canonical combining class in UTF-8
// `text` (ill-formed bytes end a run). NFC sorts such a run by insertion, in time quadratic in its
// length: 32,000 alternating marks take ICU a second. Unicode's stream-safe text format (UAX #15)
// allows 30; callers that take text from clients refuse longer runs.
int64_t LongestNonStarterRun(absl::string_view text);

}  // namespace speechllm::engine::tokenizer

#endif  // SPEECHLLM_ENGINE_MODEL_TOKENIZER_NORMALIZER_H_
