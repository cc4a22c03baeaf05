// Regex pre-tokenizer of Qwen2's tokenizer ("Split" with behaviour "Isolated"): cuts normalised
// text into the pieces that BPE then encodes one by one. Compiled once with PCRE2 (UTF + UCP, JIT);
// owned by the Tokenizer; Split() is const and safe to call from many threads at once (match data
// and JIT stack are per thread).
#ifndef SPEECHLLM_ENGINE_MODEL_TOKENIZER_PRE_TOKENIZER_H_
#define SPEECHLLM_ENGINE_MODEL_TOKENIZER_PRE_TOKENIZER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct pcre2_real_code_8;
struct pcre2_real_match_context_8;

namespace speechllm::engine::tokenizer {

// Qwen2's split pattern (HF transformers tokenization_qwen2.py PRETOKENIZE_REGEX; the same string
// is in Qwen2 tokenizer.json files). Newer Qwen models use a variant with \p{M}; this is not that
// one.
inline constexpr char kQwen2SplitPattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// `pattern` with \s (and \S outside character classes) spelled out as Unicode's White_Space set,
// so that PCRE2 matches what Oniguruma does. Other escapes and \S inside a class stay as written.
std::string WithUnicodeWhiteSpace(absl::string_view pattern);

class PreTokenizer {
 public:
  // Compiles `pattern` (PCRE2 syntax, which accepts the Oniguruma patterns of HF tokenizer.json
  // files used here). INVALID_ARGUMENT with PCRE2's message and offset if it does not compile.
  static absl::StatusOr<std::unique_ptr<PreTokenizer>> Create(absl::string_view pattern);

  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  // Appends to `pieces` the consecutive, non-empty pieces that cover `text`: every regex match, and
  // any text between matches as a piece of its own (HF's "Isolated" split). `text` must be valid
  // UTF-8 (the caller checks; PCRE2's own check is skipped for speed). INTERNAL on a PCRE2 failure.
  absl::Status Split(absl::string_view text, std::vector<absl::string_view>* pieces) const;

  const std::string& pattern() const { return pattern_; }
  bool jit_enabled() const { return jit_; }

 private:
  PreTokenizer() = default;

  std::string pattern_;
  pcre2_real_code_8* code_ = nullptr;
  pcre2_real_match_context_8* match_context_ = nullptr;
  bool jit_ = false;
};

}  // namespace speechllm::engine::tokenizer

#endif  // SPEECHLLM_ENGINE_MODEL_TOKENIZER_PRE_TOKENIZER_H_
