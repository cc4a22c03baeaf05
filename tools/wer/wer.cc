#include "tools/wer/wer.h"

#include <algorithm>

#include "streaming/text_scripts.h"
#include "unicode/normalizer2.h"
#include "unicode/uchar.h"
#include "unicode/unistr.h"

namespace speechllm::tools {
namespace {

bool IsDigit(UChar32 c) { return u_isdigit(c) != 0; }
bool IsMark(UChar32 c) {
  const int8_t type = u_charType(c);
  return type == U_NON_SPACING_MARK || type == U_COMBINING_SPACING_MARK || type == U_ENCLOSING_MARK;
}
bool IsWordChar(UChar32 c) {
  return u_hasBinaryProperty(c, UCHAR_ALPHABETIC) || IsDigit(c) || IsMark(c);
}
bool IsApostrophe(UChar32 c) { return c == '\'' || c == 0x2019; }

// NFKC with case folding (Unicode's NFKC_Casefold): fullwidth forms become ASCII, ligatures
// letters, and every case one. Ill-formed UTF-8 becomes U+FFFD, which separates words.
icu::UnicodeString Fold(absl::string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* fold = icu::Normalizer2::getNFKCCasefoldInstance(status);
  icu::UnicodeString input = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  if (U_FAILURE(status)) return input.toLower();
  icu::UnicodeString folded = fold->normalize(input, status);
  return U_FAILURE(status) ? input.toLower() : folded;
}

}  // namespace

std::vector<std::string> NormalizeWords(absl::string_view text) {
  const icu::UnicodeString folded = Fold(text);
  std::vector<UChar32> chars;
  for (int32_t i = 0; i < folded.length(); i = folded.moveIndex32(i, 1)) {
    chars.push_back(folded.char32At(i));
  }
  std::vector<std::string> words;
  icu::UnicodeString word;
  bool last_word_unspaced = false;  // the last word is one character of an unspaced script
  auto flush = [&] {
    if (!word.isEmpty()) {
      words.emplace_back();
      word.toUTF8String(words.back());
      last_word_unspaced = false;
    }
    word.remove();
  };
  for (size_t i = 0; i < chars.size(); ++i) {
    const UChar32 c = chars[i];
    const UChar32 next = i + 1 < chars.size() ? chars[i + 1] : 0;
    const UChar32 previous = word.isEmpty() ? 0 : word.char32At(word.length() - 1);
    if (IsMark(c) && word.isEmpty() && last_word_unspaced) {
      icu::UnicodeString(c).toUTF8String(words.back());  // a Thai vowel sign after its letter
    } else if (IsWordChar(c) && streaming::IsUnspacedScript(static_cast<char32_t>(c))) {
      // Written without spaces: every character is a word, as a character error rate counts.
      flush();
      word.append(c);
      flush();
      last_word_unspaced = true;
    } else if (IsWordChar(c)) {
      word.append(c);
    } else if ((c == ':' || c == '.' || c == ',') && IsDigit(previous) && IsDigit(next)) {
      if (c != ',') word.append(c);  // 7:30 and 3.5 stay one word; 1,000 becomes 1000
    } else if (IsApostrophe(c) && IsWordChar(previous) && IsWordChar(next)) {
      word.append(static_cast<UChar32>('\''));  // don't, don’t
    } else {
      flush();
      last_word_unspaced = false;
    }
  }
  flush();
  return words;
}

WordErrors& WordErrors::operator+=(const WordErrors& other) {
  substitutions += other.substitutions;
  deletions += other.deletions;
  insertions += other.insertions;
  reference_words += other.reference_words;
  return *this;
}

WordErrors AlignWords(const std::vector<std::string>& reference,
                      const std::vector<std::string>& hypothesis) {
  const size_t n = reference.size(), m = hypothesis.size();
  // cost[i][j]: edits turning reference[0, i) into hypothesis[0, j); ties prefer substitutions,
  // then deletions, so the split between kinds is deterministic.
  struct Cell {
    int64_t cost = 0, substitutions = 0, deletions = 0, insertions = 0;
  };
  std::vector<std::vector<Cell>> table(n + 1, std::vector<Cell>(m + 1));
  for (size_t i = 1; i <= n; ++i)
    table[i][0] = {static_cast<int64_t>(i), 0, static_cast<int64_t>(i), 0};
  for (size_t j = 1; j <= m; ++j)
    table[0][j] = {static_cast<int64_t>(j), 0, 0, static_cast<int64_t>(j)};
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      Cell diagonal = table[i - 1][j - 1];
      if (reference[i - 1] != hypothesis[j - 1]) {
        ++diagonal.cost;
        ++diagonal.substitutions;
      }
      Cell deletion = table[i - 1][j];
      ++deletion.cost;
      ++deletion.deletions;
      Cell insertion = table[i][j - 1];
      ++insertion.cost;
      ++insertion.insertions;
      Cell best = diagonal;
      if (deletion.cost < best.cost) best = deletion;
      if (insertion.cost < best.cost) best = insertion;
      table[i][j] = best;
    }
  }
  const Cell& last = table[n][m];
  WordErrors errors;
  errors.substitutions = last.substitutions;
  errors.deletions = last.deletions;
  errors.insertions = last.insertions;
  errors.reference_words = static_cast<int64_t>(n);
  return errors;
}

}  // namespace speechllm::tools
