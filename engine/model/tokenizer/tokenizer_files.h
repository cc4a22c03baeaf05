// Reading tokenizer files into a plain TokenizerSpec: HF "fast" tokenizer.json, or the "slow" trio
// vocab.json + merges.txt + tokenizer_config.json (added_tokens_decoder). Only the file format is
// checked here; Tokenizer::FromSpec validates the contents. Called once at load time on the loading
// thread; pure functions of the files.
#ifndef SPEECHLLM_ENGINE_MODEL_TOKENIZER_TOKENIZER_FILES_H_
#define SPEECHLLM_ENGINE_MODEL_TOKENIZER_TOKENIZER_FILES_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace speechllm::engine::tokenizer {

// Largest token id accepted from a file; guards against a typo allocating gigabytes.
inline constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

// A token added on top of the BPE vocabulary (HF AddedToken). Matched whole in the input text
// before normalisation and pre-tokenisation, so it is never split.
struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;  // skipped by decode(skip_special)
  bool lstrip = false;   // also swallows whitespace on its left
  bool rstrip = false;   // also swallows whitespace on its right
};

struct TokenizerSpec {
  std::string source;                                       // the file(s) read, for error messages
  std::vector<std::pair<std::string, int64_t>> vocab;       // byte-level token string -> id
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
  std::vector<AddedToken> added_tokens;
  bool nfc = true;            // NFC normaliser (Qwen2: yes)
  std::string split_pattern;  // pre-tokenizer regex; empty = Qwen2's
};

// Parses a tokenizer.json. NOT_FOUND if unreadable; INVALID_ARGUMENT naming the file for bad JSON,
// a missing model.vocab or model.merges, a malformed merge or added token, an id out of range;
// UNIMPLEMENTED for a pipeline this library does not reproduce (not BPE, dropout, byte_fallback,
// continuing_subword_prefix, a normaliser other than NFC, a pre-tokenizer other than
// Split+ByteLevel, single_word added tokens).
absl::StatusOr<TokenizerSpec> ReadTokenizerJson(const std::string& path);

// Parses vocab.json + merges.txt, and the added_tokens_decoder of tokenizer_config.json when
// `config_path` is non-empty (added_tokens.json, content -> id, is read instead when the config has
// no such table and the file exists next to vocab.json; those tokens count as special).
absl::StatusOr<TokenizerSpec> ReadVocabAndMerges(const std::string& vocab_path,
                                                 const std::string& merges_path,
                                                 const std::string& config_path);

// tokenizer.json in `dir` if present, else vocab.json + merges.txt (+ tokenizer_config.json if
// present). NOT_FOUND naming the directory if neither exists.
absl::StatusOr<TokenizerSpec> ReadTokenizerDirectory(const std::string& dir);

}  // namespace speechllm::engine::tokenizer

#endif  // SPEECHLLM_ENGINE_MODEL_TOKENIZER_TOKENIZER_FILES_H_
