#include "engine/model/tokenizer/byte_level.h"

#include <array>

#include "engine/model/tokenizer/utf8.h"

namespace speechllm::engine::tokenizer {
namespace {

// Highest code point of the alphabet + 1: 256 + 68 shifted bytes = U+0144.
constexpr char32_t kAlphabetEnd = 0x144;

struct Tables {
  std::array<char32_t, 256> byte_to_cp{};
  std::array<int, 256> listing_index{};
  std::array<int16_t, kAlphabetEnd> cp_to_byte{};  // -1 where the code point is not in the alphabet
  std::array<std::string, 256> byte_to_utf8;
};

bool IsPrintableLatin1(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

Tables BuildTables() {
  Tables t;
  t.cp_to_byte.fill(-1);
  int listed = 0;
  for (int b = 0; b < 256; ++b) {  // printable bytes keep their code point and come first
    if (IsPrintableLatin1(b)) {
      t.byte_to_cp[b] = static_cast<char32_t>(b);
      t.listing_index[b] = listed++;
    }
  }
  int shifted = 0;
  for (int b = 0; b < 256; ++b) {  // the rest take U+0100 + n in byte order
    if (!IsPrintableLatin1(b)) {
      t.byte_to_cp[b] = static_cast<char32_t>(256 + shifted++);
      t.listing_index[b] = listed++;
    }
  }
  for (int b = 0; b < 256; ++b) {
    t.cp_to_byte[t.byte_to_cp[b]] = static_cast<int16_t>(b);
    AppendUtf8(t.byte_to_cp[b], &t.byte_to_utf8[b]);
  }
  return t;
}

const Tables& GetTables() {
  static const Tables* const tables = new Tables(BuildTables());
  return *tables;
}

}  // namespace

char32_t ByteToCodePoint(uint8_t b) { return GetTables().byte_to_cp[b]; }

std::optional<uint8_t> CodePointToByte(char32_t cp) {
  if (cp >= kAlphabetEnd) return std::nullopt;
  const int16_t b = GetTables().cp_to_byte[cp];
  if (b < 0) return std::nullopt;
  return static_cast<uint8_t>(b);
}

int ByteListingIndex(uint8_t b) { return GetTables().listing_index[b]; }

std::string BytesToTokenString(absl::string_view bytes) {
  const Tables& t = GetTables();
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) out += t.byte_to_utf8[static_cast<uint8_t>(c)];
  return out;
}

std::optional<std::string> TokenStringToBytes(absl::string_view token, char32_t* bad_char) {
  std::string bytes;
  bytes.reserve(token.size());
  size_t pos = 0;
  while (pos < token.size()) {
    char32_t cp = 0;
    const size_t len = DecodeUtf8At(token, pos, &cp);
    if (len == 0) {
      if (bad_char != nullptr) *bad_char = 0xFFFD;
      return std::nullopt;
    }
    const std::optional<uint8_t> b = CodePointToByte(cp);
    if (!b.has_value()) {
      if (bad_char != nullptr) *bad_char = cp;
      return std::nullopt;
    }
    bytes.push_back(static_cast<char>(*b));
    pos += len;
  }
  return bytes;
}

}  // namespace speechllm::engine::tokenizer
