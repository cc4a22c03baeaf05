#include "engine/model/tokenizer/utf8.h"

#include <cstdint>

namespace speechllm::engine::tokenizer {
namespace {

// Allowed range of the second byte after lead byte `lead` (Unicode Table 3-7); later continuation
// bytes are always 80..BF. Returns false for bytes that cannot start a sequence.
bool LeadInfo(uint8_t lead, int* length, uint8_t* lo, uint8_t* hi) {
  *lo = 0x80;
  *hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    *length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    *length = 3;
    if (lead == 0xE0) *lo = 0xA0;  // no overlong forms
    if (lead == 0xED) *hi = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    *length = 4;
    if (lead == 0xF0) *lo = 0x90;  // no overlong forms
    if (lead == 0xF4) *hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return false;
  }
  return true;
}

enum class Scan { kComplete, kIllFormed, kTruncated };

// Number of bytes at `pos` that form a well-formed sequence (kComplete), or the longest prefix of
// one (the maximal subpart, at least 1 byte) that is followed by a byte that cannot continue it
// (kIllFormed) or by the end of `text` (kTruncated).
size_t ScanSequence(absl::string_view text, size_t pos, Scan* scan) {
  const auto lead = static_cast<uint8_t>(text[pos]);
  *scan = Scan::kIllFormed;
  if (lead < 0x80) {
    *scan = Scan::kComplete;
    return 1;
  }
  int length = 0;
  uint8_t lo = 0, hi = 0;
  if (!LeadInfo(lead, &length, &lo, &hi)) return 1;
  size_t n = 1;
  for (; n < static_cast<size_t>(length); ++n) {
    if (pos + n >= text.size()) {
      *scan = Scan::kTruncated;
      return n;
    }
    const auto c = static_cast<uint8_t>(text[pos + n]);
    if (c < lo || c > hi) return n;
    lo = 0x80;
    hi = 0xBF;
  }
  *scan = Scan::kComplete;
  return n;
}

}  // namespace

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t DecodeUtf8At(absl::string_view text, size_t pos, char32_t* cp) {
  if (pos >= text.size()) return 0;
  Scan scan;
  const size_t n = ScanSequence(text, pos, &scan);
  if (scan != Scan::kComplete) return 0;
  const auto lead = static_cast<uint8_t>(text[pos]);
  static constexpr uint8_t kLeadMask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  char32_t value = lead & kLeadMask[n];
  for (size_t i = 1; i < n; ++i)
    value = (value << 6) | (static_cast<uint8_t>(text[pos + i]) & 0x3F);
  *cp = value;
  return n;
}

size_t FirstInvalidUtf8Offset(absl::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    if (static_cast<uint8_t>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    Scan scan;
    const size_t n = ScanSequence(text, pos, &scan);
    if (scan != Scan::kComplete) return pos;
    pos += n;
  }
  return text.size();
}

size_t AppendUtf8Lossy(absl::string_view bytes, bool final, std::string* out) {
  size_t pos = 0;
  size_t run_begin = 0;  // start of the pending run of valid bytes, copied in one go
  while (pos < bytes.size()) {
    if (static_cast<uint8_t>(bytes[pos]) < 0x80) {
      ++pos;
      continue;
    }
    Scan scan;
    const size_t n = ScanSequence(bytes, pos, &scan);
    if (scan == Scan::kComplete) {
      pos += n;
      continue;
    }
    if (scan == Scan::kTruncated && !final) break;  // later bytes could still complete it
    out->append(bytes.data() + run_begin, pos - run_begin);
    out->append(kReplacementCharUtf8);
    pos += n;
    run_begin = pos;
  }
  out->append(bytes.data() + run_begin, pos - run_begin);
  return pos;
}

}  // namespace speechllm::engine::tokenizer
