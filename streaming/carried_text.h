// AppendCarriedText: the committed text a stream carries into its next utterance's prompt
// (SessionConfig::carry_context_chars, API.md 4.5): the earlier carried text joined with a new
// final's, cut to its last characters. A pure function; Session calls it under its lock.
#ifndef SPEECHLLM_STREAMING_CARRIED_TEXT_H_
#define SPEECHLLM_STREAMING_CARRIED_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace speechllm::streaming {

// `carried` and `text` joined (a space between them unless one is there), then its last
// `limit_chars` characters (code points), starting at a word when a space lies within a long
// word's length of the cut (unspaced scripts keep their characters), without leading spaces.
std::string AppendCarriedText(absl::string_view carried, absl::string_view text,
                              size_t limit_chars);

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_CARRIED_TEXT_H_
