// Byte-level alphabet of GPT-2-style BPE (used by Qwen2): every byte 0..255 is shown as one
// printable Unicode character so that a vocabulary token is a string of such characters. Owned by
// the tokenizer library; the tables are immutable after static initialisation and safe on any
// thread. Map as defined by GPT-2's `bytes_to_unicode` (openai/gpt-2 encoder.py; HF tokenizers
// ByteLevel).
#ifndef SPEECHLLM_ENGINE_MODEL_TOKENIZER_BYTE_LEVEL_H_
#define SPEECHLLM_ENGINE_MODEL_TOKENIZER_BYTE_LEVEL_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace speechllm::engine::tokenizer {

// The code point that shows byte `b`: printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC,
// U+00AE..U+00FF) stand for themselves; the other 68 bytes take U+0100, U+0101, ... in byte order.
char32_t ByteToCodePoint(uint8_t b);

// The byte that code point `cp` shows, or nullopt if `cp` is outside the 256-character alphabet.
std::optional<uint8_t> CodePointToByte(char32_t cp);

// Position of byte `b` in GPT-2's listing order (printable bytes first, then the others); GPT-2 and
// Qwen2 give the 256 single-byte tokens ids 0..255 in this order.
int ByteListingIndex(uint8_t b);

// `bytes` written in the byte-level alphabet (UTF-8 of the mapped code points).
std::string BytesToTokenString(absl::string_view bytes);

// The bytes a token string shows; nullopt if it is not valid UTF-8 or holds a character outside the
// alphabet (`bad_char` then receives that character's code point, or U+FFFD for broken UTF-8).
std::optional<std::string> TokenStringToBytes(absl::string_view token,
                                              char32_t* bad_char = nullptr);

}  // namespace speechllm::engine::tokenizer

#endif  // SPEECHLLM_ENGINE_MODEL_TOKENIZER_BYTE_LEVEL_H_
