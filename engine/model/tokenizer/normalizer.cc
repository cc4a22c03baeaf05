#include "engine/model/tokenizer/normalizer.h"

#include <algorithm>

#include <unicode/bytestream.h>
#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#include <unicode/uchar.h>
#include <unicode/utf8.h>

#include "absl/strings/str_cat.h"

namespace speechllm::engine::tokenizer {
namespace {

absl::StatusOr<const icu::Normalizer2*> Nfc() {
  UErrorCode error = U_ZERO_ERROR;
  const icu::Normalizer2* nfc = icu::Normalizer2::getNFCInstance(error);
  if (U_FAILURE(error) || nfc == nullptr) {
    return absl::InternalError(
        absl::StrCat("ICU NFC normaliser unavailable: ", u_errorName(error)));
  }
  return nfc;
}

bool IsAscii(absl::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<bool> NfcIfNeeded(absl::string_view text, std::string* out) {
  if (IsAscii(text)) return true;  // ASCII is always NFC
  absl::StatusOr<const icu::Normalizer2*> nfc = Nfc();
  if (!nfc.ok()) return nfc.status();
  const icu::StringPiece piece(text.data(), static_cast<int32_t>(text.size()));
  UErrorCode error = U_ZERO_ERROR;
  const UBool normalized = (*nfc)->isNormalizedUTF8(piece, error);
  if (U_FAILURE(error)) {
    return absl::InternalError(absl::StrCat("ICU NFC check failed: ", u_errorName(error)));
  }
  if (normalized) return true;
  out->clear();
  icu::StringByteSink<std::string> sink(out, static_cast<int32_t>(text.size()));
  (*nfc)->normalizeUTF8(0, piece, sink, nullptr, error);
  if (U_FAILURE(error)) {
    return absl::InternalError(absl::StrCat("ICU NFC normalisation failed: ", u_errorName(error)));
  }
  return false;
}

int64_t LongestNonStarterRun(absl::string_view text) {
  int64_t longest = 0, run = 0;
  const auto* bytes = reinterpret_cast<const uint8_t*>(text.data());
  const int32_t length = static_cast<int32_t>(text.size());
  for (int32_t at = 0; at < length;) {
    UChar32 c;
    U8_NEXT(bytes, at, length, c);
    run = (c >= 0x80 && u_getCombiningClass(c) != 0) ? run + 1 : 0;  // ASCII: all starters
    longest = std::max(longest, run);
  }
  return longest;
}

absl::StatusOr<std::string> ToNfc(absl::string_view text) {
  std::string out;
  absl::StatusOr<bool> unchanged = NfcIfNeeded(text, &out);
  if (!unchanged.ok()) return unchanged.status();
  if (*unchanged) return std::string(text);
  return out;
}

}  // namespace speechllm::engine::tokenizer
