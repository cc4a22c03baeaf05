#include "server/languages.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace speechllm::server {
std::string PrimarySubtag(absl::string_view code) {
  return absl::AsciiStrToLower(code.substr(0, code.find('-')));
}

absl::Status CheckLanguageCode(absl::string_view code) {
  const auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", code.substr(0, 40), "\" is not a BCP-47 language code (", why, ")"));
  };
  if (code.empty() || code.size() > 35) return bad("2 to 35 characters");
  bool first = true;
  for (absl::string_view subtag : absl::StrSplit(code, '-')) {
    if (subtag.empty() || subtag.size() > 8) return bad("subtags of 1 to 8 characters");
    const bool letters = std::all_of(subtag.begin(), subtag.end(), absl::ascii_isalpha);
    const bool alphanumeric = std::all_of(subtag.begin(), subtag.end(), absl::ascii_isalnum);
    if (first && (!letters || subtag.size() < 2)) return bad("a language of 2 to 8 letters first");
    if (!alphanumeric) return bad("letters and digits only");
    first = false;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ResolveLanguage(const std::vector<std::string>& hints,
                                            const std::vector<std::string>& served) {
  for (const std::string& hint : hints) {
    if (absl::Status status = CheckLanguageCode(hint); !status.ok()) return status;
    const bool known = std::any_of(served.begin(), served.end(), [&](const std::string& language) {
      return PrimarySubtag(language) == PrimarySubtag(hint);
    });
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "this server transcribes ", absl::StrJoin(served, ", "), ", not \"", hint, "\""));
    }
  }
  if (!hints.empty()) return hints.front();
  return served.size() == 1 ? served.front() : std::string();
}

}  // namespace speechllm::server
