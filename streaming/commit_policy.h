// CommitPolicy: decides how much of an utterance's hypothesis becomes committed text
// (LocalAgreement-2, a holdback of k tokens, both, or NONE); the committed count never decreases.
// Owned by one Session; called on the output dispatcher thread (under the session's lock).
#ifndef SPEECHLLM_STREAMING_COMMIT_POLICY_H_
#define SPEECHLLM_STREAMING_COMMIT_POLICY_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "engine/model/tokenizer/tokenizer.h"
#include "streaming/session_config.h"

namespace speechllm::streaming {

// LocalAgreement-2 (Macháček et al. 2023, arXiv 2307.14743) commits the longest prefix two
// consecutive hypotheses agree on; a holdback of k tokens (Qwen3-ASR's rollback, API.md 4.2) never
// commits a hypothesis' last k tokens nor anything in the first two updates; either or both
// (CommitRules), rounded down to a boundary where the text is complete UTF-8 and, in
// space-delimited scripts, a whole word (in both hypotheses when they must agree). NONE commits
// nothing before the final.
class CommitPolicy {
 public:
  // `tokenizer` (not owned) gives token bytes for the boundary rule; without one nothing is
  // committed before the final (token boundaries alone do not guarantee complete characters).
  CommitPolicy(CommitPolicyKind kind, const engine::tokenizer::Tokenizer* tokenizer,
               CommitRules rules = {});

  // Consumes the next partial hypothesis, which starts with the `committed` tokens already
  // committed (the caller's count); returns the token count to commit: a prefix of `hypothesis`,
  // at least `committed` (clamped to hypothesis.size()). The policy remembers the hypothesis for
  // the next agreement, not the count, so a caller that drops a proposal stays consistent.
  int64_t OnHypothesis(const std::vector<int64_t>& hypothesis, int64_t committed);

  // True when the first `count` tokens of `tokens` end at a commit boundary: their bytes form
  // complete UTF-8 and either the text after them starts a new word (whitespace or punctuation) or
  // their last character needs no word boundary (whitespace, punctuation, CJK and other unspaced
  // scripts).
  bool IsBoundary(const std::vector<int64_t>& tokens, int64_t count) const;

 private:
  // The first character of the text of tokens[from...]: U+FFFD for an ill-formed byte, nullopt
  // when there is none yet (no tokens, or a character split past the hypothesis' end).
  std::optional<char32_t> FirstCodePointFrom(const std::vector<int64_t>& tokens,
                                             int64_t from) const;

  CommitPolicyKind kind_;
  const engine::tokenizer::Tokenizer* tokenizer_;
  CommitRules rules_;
  std::vector<int64_t> previous_;
  int updates_ = 0;  // hypotheses of this utterance so far (one policy per utterance)
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_COMMIT_POLICY_H_
