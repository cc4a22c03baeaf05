#include "engine/model/tokenizer/added_token_matcher.h"

#include <algorithm>

#include "engine/model/tokenizer/utf8.h"

namespace speechllm::engine::tokenizer {
namespace {

// Unicode White_Space (what lstrip/rstrip strip in HF tokenizers, Rust char::is_whitespace).
bool IsWhiteSpace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

// Start of the run of whitespace that ends at `end` (not before `floor`).
size_t WhiteSpaceRunBefore(absl::string_view text, size_t floor, size_t end) {
  size_t begin = end;
  while (begin > floor) {
    size_t start = begin - 1;  // back up to the lead byte of the previous character
    while (start > floor && (static_cast<uint8_t>(text[start]) & 0xC0) == 0x80) --start;
    char32_t cp = 0;
    if (DecodeUtf8At(text, start, &cp) != begin - start || !IsWhiteSpace(cp)) break;
    begin = start;
  }
  return begin;
}

size_t WhiteSpaceRunAfter(absl::string_view text, size_t begin) {
  size_t end = begin;
  char32_t cp = 0;
  while (end < text.size()) {
    const size_t len = DecodeUtf8At(text, end, &cp);
    if (len == 0 || !IsWhiteSpace(cp)) break;
    end += len;
  }
  return end;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<AddedToken>& tokens) : tokens_(tokens) {
  nodes_.emplace_back();
  for (size_t t = 0; t < tokens_.size(); ++t) {
    int32_t node = 0;
    for (char c : tokens_[t].content) {
      const auto byte = static_cast<uint8_t>(c);
      int32_t child = Child(node, byte);
      if (child < 0) {
        child = static_cast<int32_t>(nodes_.size());
        auto& children = nodes_[node].children;
        children.insert(std::lower_bound(children.begin(), children.end(), std::make_pair(byte, 0)),
                        std::make_pair(byte, child));
        nodes_.emplace_back();  // may reallocate: `children` is not used after this
      }
      node = child;
    }
    nodes_[node].token = static_cast<int32_t>(t);
    if (!tokens_[t].content.empty()) can_start_[static_cast<uint8_t>(tokens_[t].content[0])] = true;
  }
}

int32_t AddedTokenMatcher::Child(int32_t node, uint8_t byte) const {
  const auto& children = nodes_[node].children;
  const auto it = std::lower_bound(children.begin(), children.end(), std::make_pair(byte, 0));
  return it != children.end() && it->first == byte ? it->second : -1;
}

bool AddedTokenMatcher::FindNext(absl::string_view text, size_t from, Match* match) const {
  if (tokens_.empty()) return false;
  for (size_t pos = from; pos < text.size(); ++pos) {
    if (!can_start_[static_cast<uint8_t>(text[pos])]) continue;
    int32_t node = 0;
    int32_t best = -1;
    size_t best_end = pos;
    for (size_t i = pos; i < text.size(); ++i) {
      node = Child(node, static_cast<uint8_t>(text[i]));
      if (node < 0) break;
      if (nodes_[node].token >= 0) {
        best = nodes_[node].token;
        best_end = i + 1;
      }
    }
    if (best < 0) continue;
    const AddedToken& token = tokens_[best];
    match->id = token.id;
    match->begin = token.lstrip ? WhiteSpaceRunBefore(text, from, pos) : pos;
    match->end = token.rstrip ? WhiteSpaceRunAfter(text, best_end) : best_end;
    return true;
  }
  return false;
}

}  // namespace speechllm::engine::tokenizer
