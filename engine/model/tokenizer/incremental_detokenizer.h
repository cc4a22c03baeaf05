// Incremental detokenizer: a growing list of generated ids -> text deltas that never end inside a
// UTF-8 character (bytes later tokens may complete are held back; bytes that can never be valid
// become U+FFFD where Decode() puts them, so deltas + Finish() == Decode() of all ids).
// One instance per generated sequence, used by the thread running that sequence's decode loop; it
// only reads the shared Tokenizer, which must outlive it.
#ifndef SPEECHLLM_ENGINE_MODEL_TOKENIZER_INCREMENTAL_DETOKENIZER_H_
#define SPEECHLLM_ENGINE_MODEL_TOKENIZER_INCREMENTAL_DETOKENIZER_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/model/tokenizer/tokenizer.h"

namespace speechllm::engine::tokenizer {

class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(const Tokenizer* tokenizer, const DecodeOptions& options = {})
      : tokenizer_(tokenizer), options_(options) {}

  // Adds the next id(s); returns the text that became final (possibly empty). OUT_OF_RANGE for an
  // id not in the vocabulary (nothing is added then), unless options.skip_unknown_ids drops it.
  absl::StatusOr<std::string> Append(int32_t id);
  absl::StatusOr<std::string> Append(absl::Span<const int32_t> ids);

  // End of the sequence: returns the held-back bytes, an incomplete character becoming U+FFFD.
  std::string Finish();

  // Bytes waiting for the rest of their UTF-8 character (at most 3).
  size_t pending_bytes() const { return pending_.size(); }
  int64_t num_ids() const { return num_ids_; }

 private:
  const Tokenizer* tokenizer_;
  DecodeOptions options_;
  std::string pending_;
  int64_t num_ids_ = 0;
};

}  // namespace speechllm::engine::tokenizer

#endif  // SPEECHLLM_ENGINE_MODEL_TOKENIZER_INCREMENTAL_DETOKENIZER_H_
