// PartialErasure: the partial-to-final edit rate of API.md 5, the normalized erasure of
// Arivazhagan et al. (arXiv 2004.03643): per utterance, the words erased between consecutive
// displayed texts (committed + tentative, then the final) over the words of the final; a last word
// that only grew counts as kept. Owned by one call's CallMetrics, which calls it under its own
// lock; not thread-safe.
#ifndef SPEECHLLM_SERVER_PARTIAL_ERASURE_H_
#define SPEECHLLM_SERVER_PARTIAL_ERASURE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "streaming/session_event.h"

namespace speechllm::server {

// The words a reader sees in `text`: runs between whitespace, except that every character of a
// script written without spaces (CJK, kana, Hangul, Thai) is a word of its own.
std::vector<std::string> DisplayedWords(absl::string_view text);

class PartialErasure {
 public:
  // One transcript update, in the order the client receives them. Returns the utterance's ratio
  // with its final when the final has words (0: no partial was ever taken back); nullopt otherwise.
  std::optional<double> Update(const streaming::TranscriptEvent& update);

  // Utterances with updates and no final yet (each holds its displayed words).
  size_t open_utterances() const { return utterances_.size(); }

 private:
  struct Utterance {
    std::string committed_text;
    std::vector<std::string> displayed_words;
    int64_t erased_words = 0;
  };
  absl::flat_hash_map<int64_t, Utterance> utterances_;
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_PARTIAL_ERASURE_H_
