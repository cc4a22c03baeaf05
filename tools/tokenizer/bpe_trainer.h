// A small byte-level BPE trainer: learns merges by pair frequency over the pre-tokenized words of a
// corpus (NFC + the Qwen2 split regex, as the tokenizer encodes) and writes a tokenizer.json that
// engine/model/tokenizer loads. Made for tiny test vocabularies (models/qwen2-audio-tiny), not for
// production-size training: each merge rescans every distinct word. Single-threaded tool code.
#ifndef SPEECHLLM_TOOLS_TOKENIZER_BPE_TRAINER_H_
#define SPEECHLLM_TOOLS_TOKENIZER_BPE_TRAINER_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace speechllm::tools {

struct BpeTrainerOptions {
  int32_t vocab_size = 512;  // total entries: 256 bytes + merges + special tokens
  // Special tokens at fixed ids (content, id); ids must be < vocab_size and distinct.
  std::vector<std::pair<std::string, int32_t>> special_tokens;
};

struct BpeTrainingResult {
  std::string tokenizer_json;  // HF tokenizers format
  int32_t num_merges = 0;
  int64_t num_distinct_words = 0;
};

// Trains on `corpus` (UTF-8). Ids: the 256 single-byte tokens first, in GPT-2's listing order, then
// one id per merge, each taking the lowest id not held by a special token. The most frequent
// adjacent pair is merged next; ties go to the pair whose left, then right, token sorts first by
// bytes, so the result depends only on the corpus and the options. INVALID_ARGUMENT for bad
// options, invalid UTF-8, or a corpus too small to fill the vocabulary.
absl::StatusOr<BpeTrainingResult> TrainByteLevelBpe(absl::string_view corpus,
                                                    const BpeTrainerOptions& options);

// Parses "<|AUDIO|>=500,<|audio_bos|>=501" into (content, id) pairs.
absl::StatusOr<std::vector<std::pair<std::string, int32_t>>> ParseSpecialTokens(
    absl::string_view spec);

}  // namespace speechllm::tools

#endif  // SPEECHLLM_TOOLS_TOKENIZER_BPE_TRAINER_H_
