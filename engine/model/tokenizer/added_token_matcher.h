// Finds added/special tokens (e.g. <|im_start|>, <|AUDIO|>) in raw input text so that they are
// emitted whole and never reach the pre-tokenizer or BPE. Leftmost match first, the longest one at
// that position (HF tokenizers' AddedVocabulary uses leftmost-longest Aho-Corasick). Owned by the
// Tokenizer; built once at load, then const and safe on any thread.
#ifndef SPEECHLLM_ENGINE_MODEL_TOKENIZER_ADDED_TOKEN_MATCHER_H_
#define SPEECHLLM_ENGINE_MODEL_TOKENIZER_ADDED_TOKEN_MATCHER_H_

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "engine/model/tokenizer/tokenizer_files.h"

namespace speechllm::engine::tokenizer {

class AddedTokenMatcher {
 public:
  struct Match {
    size_t begin = 0;  // byte range in the text, including whitespace taken by lstrip/rstrip
    size_t end = 0;
    int32_t id = 0;
  };

  // `tokens` must have distinct, non-empty contents (checked by the Tokenizer).
  explicit AddedTokenMatcher(const std::vector<AddedToken>& tokens);

  // The first added token in `text` at or after byte `from`; false if there is none.
  bool FindNext(absl::string_view text, size_t from, Match* match) const;

  bool empty() const { return tokens_.empty(); }

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t token = -1;                                 // index into tokens_ if a token ends here
  };
  int32_t Child(int32_t node, uint8_t byte) const;

  std::vector<AddedToken> tokens_;
  std::vector<Node> nodes_;            // nodes_[0] is the root
  std::array<bool, 256> can_start_{};  // first bytes of the tokens
};

}  // namespace speechllm::engine::tokenizer

#endif  // SPEECHLLM_ENGINE_MODEL_TOKENIZER_ADDED_TOKEN_MATCHER_H_
