// Word error rate (issue 9): text normalization (Unicode NFKC case folding, punctuation dropped
// except inside numbers such as 7:30 or 3.5 and apostrophes inside words, every character of a
// script written without spaces its own word) and a word-level Levenshtein alignment counting
// substitutions, deletions and insertions. Pure functions; any thread.
#ifndef SPEECHLLM_TOOLS_WER_WER_H_
#define SPEECHLLM_TOOLS_WER_WER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace speechllm::tools {

// The normalized words of `text` (UTF-8; ill-formed bytes separate words).
std::vector<std::string> NormalizeWords(absl::string_view text);

struct WordErrors {
  int64_t substitutions = 0, deletions = 0, insertions = 0;
  int64_t reference_words = 0;

  int64_t errors() const { return substitutions + deletions + insertions; }
  // Percent; 0 for an empty reference without insertions.
  double rate_percent() const {
    return reference_words == 0 ? (insertions > 0 ? 100.0 : 0.0)
                                : 100.0 * errors() / reference_words;
  }
  WordErrors& operator+=(const WordErrors& other);
};

// Minimum-edit alignment of `hypothesis` against `reference` (both normalized words).
WordErrors AlignWords(const std::vector<std::string>& reference,
                      const std::vector<std::string>& hypothesis);

}  // namespace speechllm::tools

#endif  // SPEECHLLM_TOOLS_WER_WER_H_
