// Reading tests/data/tokenizer/corpus.txt, the tokenizer reference corpus: one input per line, with
// \n \t \r and \\ standing for newline, tab, carriage return and backslash (any other backslash is
// kept as is), so that multi-line inputs fit on one line. Written by
// tools/tokenizer/make_reference_corpus.py. Header-only test/benchmark support; single-threaded.
#ifndef SPEECHLLM_TESTS_INTEGRATION_TOKENIZER_REFERENCE_CORPUS_H_
#define SPEECHLLM_TESTS_INTEGRATION_TOKENIZER_REFERENCE_CORPUS_H_

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace speechllm::testing {

inline std::string UnescapeCorpusLine(const std::string& line) {
  std::string out;
  out.reserve(line.size());
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] != '\\' || i + 1 == line.size()) {
      out += line[i];
      continue;
    }
    const char next = line[i + 1];
    const char* replacement = next == 'n'    ? "\n"
                              : next == 't'  ? "\t"
                              : next == 'r'  ? "\r"
                              : next == '\\' ? "\\"
                                             : nullptr;
    if (replacement == nullptr) {
      out += line[i];  // unknown escape: keep the backslash
      continue;
    }
    out += replacement;
    ++i;
  }
  return out;
}

// The unescaped inputs of `path`, or nullopt if it cannot be read.
inline std::optional<std::vector<std::string>> ReadReferenceCorpus(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::vector<std::string> texts;
  std::string line;
  while (std::getline(in, line)) texts.push_back(UnescapeCorpusLine(line));
  return texts;
}

// $SPEECHLLM_TOKENIZER_CORPUS, else the corpus under `source_dir` (the repository root).
inline std::string ReferenceCorpusPath(const std::string& source_dir = ".") {
  const char* path = std::getenv("SPEECHLLM_TOKENIZER_CORPUS");
  return path != nullptr && *path != '\0' ? path : source_dir + "/tests/data/tokenizer/corpus.txt";
}

}  // namespace speechllm::testing

#endif  // SPEECHLLM_TESTS_INTEGRATION_TOKENIZER_REFERENCE_CORPUS_H_
