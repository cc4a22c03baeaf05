#include "streaming/commit_policy.h"

#include <algorithm>
#include <string>

#include "engine/model/tokenizer/utf8.h"
#include "streaming/text_scripts.h"

namespace speechllm::streaming {
namespace {

using engine::tokenizer::AppendUtf8Lossy;

bool IsAsciiWordChar(char32_t c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

// Characters after which a commit needs no look at the next token: anything but letters and digits
// of space-delimited scripts. Scripts written without spaces (CJK, kana, Thai...) break anywhere;
// Hangul, Latin ligatures, fullwidth Latin and Arabic presentation forms are letters.
bool EndsWord(char32_t c) {
  if (c < 0x80) return !IsAsciiWordChar(c);
  if (ContinuesCluster(c) || (c >= 0x200B && c <= 0x200F) || (c >= 0x2060 && c <= 0x206F))
    return false;  // joiners and marks hold on to their neighbours
  if (IsUnspacedScript(c)) return true;
  if (c >= 0x2000 && c <= 0x2BFF) return true;    // punctuation, symbols, arrows, shapes
  if (c >= 0x1F000 && c <= 0x1FAFF) return true;  // emoji and pictographs
  return c == 0xFFFD;  // an ill-formed byte decodes to it whatever follows
}

}  // namespace

CommitPolicy::CommitPolicy(CommitPolicyKind kind, const engine::tokenizer::Tokenizer* tokenizer,
                           CommitRules rules)
    : kind_(kind), tokenizer_(tokenizer), rules_(rules) {}

std::optional<char32_t> CommitPolicy::FirstCodePointFrom(const std::vector<int64_t>& tokens,
                                                         int64_t from) const {
  std::string bytes;
  for (int64_t i = from; i < static_cast<int64_t>(tokens.size()) && bytes.size() < 4; ++i) {
    auto token = tokenizer_->TokenBytes(static_cast<int32_t>(tokens[i]));
    if (!token.has_value()) break;
    bytes.append(token->data(), token->size());
  }
  // Lossy: an ill-formed byte is U+FFFD, as the text shows it; a character not complete yet is
  // none.
  std::string text;
  AppendUtf8Lossy(bytes, /*final=*/false, &text);
  return FirstCodePoint(text);
}

bool CommitPolicy::IsBoundary(const std::vector<int64_t>& tokens, int64_t count) const {
  if (count == 0) return true;
  if (tokenizer_ == nullptr) return false;
  std::string prefix;
  for (int64_t i = 0; i < count; ++i) {
    auto bytes = tokenizer_->TokenBytes(static_cast<int32_t>(tokens[i]));
    if (!bytes.has_value()) return false;
    prefix.append(bytes->data(), bytes->size());
  }
  if (prefix.empty()) return false;
  // Not inside a character split over tokens: the text decodes alike whatever comes next. An
  // ill-formed byte before the end does too (U+FFFD, maximal subparts), so it stops no commit.
  std::string text;
  if (AppendUtf8Lossy(prefix, /*final=*/false, &text) != prefix.size() || text.empty())
    return false;
  const std::optional<char32_t> last = LastCodePoint(text);
  if (!last.has_value()) return false;
  if (EndsWord(*last)) {
    // Unless what follows belongs to this character (a vowel sign after a Lao or Myanmar
    // consonant, an emoji's variation selector, a ZWJ sequence) or is not known yet.
    if (count >= static_cast<int64_t>(tokens.size())) return true;
    const std::optional<char32_t> next = FirstCodePointFrom(tokens, count);
    return next.has_value() && !ContinuesCluster(*next);
  }
  if (count >= static_cast<int64_t>(tokens.size())) return false;  // the word may go on
  auto next = tokenizer_->TokenBytes(static_cast<int32_t>(tokens[count]));
  if (!next.has_value() || next->empty()) return false;
  const unsigned char first = static_cast<unsigned char>((*next)[0]);
  return first < 0x80 && !IsAsciiWordChar(first);
}

int64_t CommitPolicy::OnHypothesis(const std::vector<int64_t>& hypothesis, int64_t committed) {
  const int64_t size = static_cast<int64_t>(hypothesis.size());
  committed = std::clamp<int64_t>(committed, 0, size);
  if (kind_ != CommitPolicyKind::kLocalAgreement) return committed;
  ++updates_;
  // Keep committed text: only a longer proposal can commit more.
  int64_t proposal = size;
  if (rules_.holdback_tokens > 0) {
    proposal = updates_ <= CommitRules::kColdStartUpdates ? 0 : size - rules_.holdback_tokens;
  }
  const bool agree = rules_.agreement;
  if (agree) {
    const auto mismatch =
        std::mismatch(previous_.begin(), previous_.end(), hypothesis.begin(), hypothesis.end());
    proposal =
        previous_.empty() ? 0 : std::min<int64_t>(proposal, mismatch.second - hypothesis.begin());
  }
  // The proposal must end a word, in both hypotheses when they agree on it ("to" before " me" now,
  // but "to|day" before). Where the previous hypothesis simply ended, the current one's boundary
  // decides.
  auto word_end = [&](int64_t count) {
    return IsBoundary(hypothesis, count) &&
           (!agree || count == static_cast<int64_t>(previous_.size()) ||
            IsBoundary(previous_, count));
  };
  while (proposal > committed && !word_end(proposal)) --proposal;
  previous_ = hypothesis;
  return std::max(committed, proposal);
}

}  // namespace speechllm::streaming
