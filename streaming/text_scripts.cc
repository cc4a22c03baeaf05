#include "streaming/text_scripts.h"

#include <unicode/uchar.h>

#include "absl/strings/ascii.h"
#include "engine/model/tokenizer/utf8.h"

namespace speechllm::streaming {
namespace {

using engine::tokenizer::DecodeUtf8At;

bool IsSpace(char32_t c) {
  return (c < 0x80 && absl::ascii_isspace(static_cast<unsigned char>(c))) || c == 0x3000 ||
         c == 0x00A0 || (c >= 0x2000 && c <= 0x200B);
}

}  // namespace

std::optional<char32_t> FirstCodePoint(absl::string_view text) {
  char32_t c = 0;
  if (text.empty() || DecodeUtf8At(text, 0, &c) == 0) return std::nullopt;
  return c;
}

std::optional<char32_t> LastCodePoint(absl::string_view text) {
  if (text.empty()) return std::nullopt;
  size_t start = text.size() - 1;
  while (start > 0 && text.size() - start < 4 &&
         (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) {
    --start;
  }
  char32_t c = 0;
  if (DecodeUtf8At(text, start, &c) != text.size() - start) return std::nullopt;
  return c;
}

bool IsUnspacedScript(char32_t c) {
  return (c >= 0x0E00 && c <= 0x0EFF) ||  // Thai, Lao
         (c >= 0x0F00 && c <= 0x0FFF) ||  // Tibetan
         (c >= 0x1000 && c <= 0x109F) ||  // Myanmar
         (c >= 0x1780 && c <= 0x17FF) ||  // Khmer
         (c >= 0x2E80 && c <= 0x2FDF) ||  // CJK and Kangxi radicals
         (c >= 0x3000 && c <= 0x312F) ||  // CJK punctuation, kana, Bopomofo
         (c >= 0x3190 && c <= 0x9FFF) ||  // kanbun to CJK unified ideographs (extension A too)
         (c >= 0xA000 && c <= 0xA4CF) ||  // Yi
         (c >= 0xF900 && c <= 0xFAFF) ||  // CJK compatibility ideographs
         (c >= 0xFE30 && c <= 0xFE4F) ||  // CJK compatibility forms
         (c >= 0xFF01 && c <= 0xFF0F) ||  // fullwidth punctuation
         (c >= 0xFF1A && c <= 0xFF20) ||  // fullwidth punctuation
         (c >= 0xFF3B && c <= 0xFF40) ||  // fullwidth punctuation
         (c >= 0xFF5B && c <= 0xFF9F) ||  // fullwidth punctuation, halfwidth kana
         (c >= 0x20000 && c <= 0x3FFFF);  // CJK extensions B and later
}

bool ContinuesCluster(char32_t c) {
  const int32_t kind = u_getIntPropertyValue(static_cast<UChar32>(c), UCHAR_GRAPHEME_CLUSTER_BREAK);
  return kind == U_GCB_EXTEND || kind == U_GCB_ZWJ || kind == U_GCB_SPACING_MARK;
}

std::string UtteranceSeparator(absl::string_view before, absl::string_view after) {
  const char32_t last = LastCodePoint(before).value_or(0);
  const char32_t first = FirstCodePoint(after).value_or(0);
  if (last == 0 || first == 0) return "";
  if (IsSpace(last) || IsSpace(first)) return "";
  if (IsUnspacedScript(last) || IsUnspacedScript(first)) return "";
  // Closing punctuation and marks belong to what comes before them.
  if ((first < 0x80 &&
       absl::string_view(",.;:!?)]}%").find(static_cast<char>(first)) != absl::string_view::npos) ||
      ContinuesCluster(first)) {
    return "";
  }
  return " ";
}

}  // namespace speechllm::streaming
