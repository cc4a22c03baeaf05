#include "streaming/carried_text.h"

#include "absl/strings/str_cat.h"
#include "streaming/text_scripts.h"

namespace speechllm::streaming {

std::string AppendCarriedText(absl::string_view carried, absl::string_view text,
                              size_t limit_chars) {
  if (text.empty()) return std::string(carried);
  // Joined as the stream's transcript joins its utterances (no space in unspaced scripts).
  std::string all = absl::StrCat(carried, UtteranceSeparator(carried, text), text);
  // Characters, not bytes (bytes kept a third of them in CJK text). The rest of a cut word is
  // dropped, but unspaced text (CJK, Thai) whose next space lies far on keeps its characters (it
  // used to keep only what followed that space: "OK" of 60 CJK characters and " OK").
  constexpr size_t kLongestWordChars = 24;
  auto is_lead = [&all](size_t i) { return (static_cast<unsigned char>(all[i]) & 0xC0) != 0x80; };
  size_t start = all.size();
  for (size_t kept = 0; start > 0 && kept < limit_chars;) {
    --start;
    if (is_lead(start)) ++kept;
  }
  if (start > 0) {
    if (all[start - 1] != ' ') {
      const size_t space = all.find(' ', start);
      size_t word_chars = 0;
      for (size_t i = start; i < space && i < all.size(); ++i) word_chars += is_lead(i) ? 1 : 0;
      if (space != std::string::npos && word_chars <= kLongestWordChars) start = space;
    }
    all = all.substr(start);
  }
  const size_t first = all.find_first_not_of(' ');
  return first == std::string::npos ? std::string() : all.substr(first);
}

}  // namespace speechllm::streaming
