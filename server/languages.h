// Languages: the BCP-47 codes a server transcribes (--languages), a request's language_codes hints
// checked against them, and the language its results report (API.md 2.1). Pure functions, called
// by config conversion on the gRPC threads.
#ifndef SPEECHLLM_SERVER_LANGUAGES_H_
#define SPEECHLLM_SERVER_LANGUAGES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace speechllm::server {

// OK for a well-formed BCP-47 tag as used here: a primary subtag of 2 to 8 letters, then subtags of
// 1 to 8 letters or digits joined by '-' (en, en-US, zh-Hans-CN); INVALID_ARGUMENT otherwise.
absl::Status CheckLanguageCode(absl::string_view code);

// The language subtag of a BCP-47 code, lower-cased: "en-GB" -> "en".
std::string PrimarySubtag(absl::string_view code);

// The language results report, given a request's `hints` and the `served` languages: the first
// hint as the client spelled it; without hints, the served language when there is only one, else
// empty (the model cannot detect one). INVALID_ARGUMENT naming the served languages when a hint is
// malformed or names none of them (matched by primary subtag, case-insensitive: en-GB is en).
absl::StatusOr<std::string> ResolveLanguage(const std::vector<std::string>& hints,
                                            const std::vector<std::string>& served);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_LANGUAGES_H_
