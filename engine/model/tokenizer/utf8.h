// UTF-8 helpers of the tokenizer: validation, code point iteration and the lossy decoding that
// turns ill-formed byte sequences into U+FFFD. Owned by the tokenizer library; pure functions, any
// thread. Replacement follows Unicode's "maximal subpart" practice (Unicode 15 section 3.9, Table
// 3-7), which is what Python's bytes.decode(errors="replace") and Rust's String::from_utf8_lossy
// both do.
#ifndef SPEECHLLM_ENGINE_MODEL_TOKENIZER_UTF8_H_
#define SPEECHLLM_ENGINE_MODEL_TOKENIZER_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace speechllm::engine::tokenizer {

inline constexpr char kReplacementCharUtf8[] = "\xEF\xBF\xBD";  // U+FFFD

// Appends the UTF-8 encoding of `cp` (must be a Unicode scalar value) to `out`.
void AppendUtf8(char32_t cp, std::string* out);

// Length in bytes of the well-formed UTF-8 sequence starting at `text[pos]`, or 0 if none starts
// there (ill-formed or truncated). On success `*cp` receives the code point.
size_t DecodeUtf8At(absl::string_view text, size_t pos, char32_t* cp);

// Byte offset of the first ill-formed sequence in `text`, or text.size() if all of it is valid
// UTF-8.
size_t FirstInvalidUtf8Offset(absl::string_view text);

// Appends `bytes` to `out` as valid UTF-8, replacing each maximal subpart of an ill-formed sequence
// by U+FFFD. If `final` is false, a trailing incomplete sequence that later bytes could still
// complete is not consumed. Returns how many bytes of `bytes` were consumed (== bytes.size() when
// `final`).
size_t AppendUtf8Lossy(absl::string_view bytes, bool final, std::string* out);

}  // namespace speechllm::engine::tokenizer

#endif  // SPEECHLLM_ENGINE_MODEL_TOKENIZER_UTF8_H_
