#include "tools/wer/wer.h"

#include <algorithm>
#include <cctype>

namespace speechllm::tools {
namespace {

bool IsDigit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool IsWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || static_cast<unsigned char>(c) >= 0x80;
}

}  // namespace

std::vector<std::string> NormalizeWords(absl::string_view text) {
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const char next = i + 1 < text.size() ? text[i + 1] : '\0';
    const char previous = word.empty() ? '\0' : word.back();
    if (IsWordChar(c)) {
      word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else if ((c == ':' || c == '.' || c == ',') && IsDigit(previous) && IsDigit(next)) {
      if (c != ',') word.push_back(c);  // 7:30 and 3.5 stay one word; 1,000 becomes 1000
    } else if (c == '\'' && IsWordChar(previous) && IsWordChar(next)) {
      word.push_back(c);  // don't
    } else {
      flush();
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
