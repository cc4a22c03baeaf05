// Which characters belong to scripts written without spaces between words (Han, kana, Thai...):
// there every character can end a word, and two utterances join without a space; and the code
// points at a text's ends that those rules look at. Pure functions, any thread; used by the commit
// rule, the utterance separator and the server's displayed-word count.
#ifndef SPEECHLLM_STREAMING_TEXT_SCRIPTS_H_
#define SPEECHLLM_STREAMING_TEXT_SCRIPTS_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace speechllm::streaming {

// The code point at the start or the end of `text`; nullopt when it is empty or ill-formed there.
std::optional<char32_t> FirstCodePoint(absl::string_view text);
std::optional<char32_t> LastCodePoint(absl::string_view text);

// Han ideographs and their radicals, strokes and compatibility forms, kana (full and halfwidth),
// Bopomofo, Yi, CJK and fullwidth punctuation, Thai, Lao, Tibetan, Myanmar and Khmer. Hangul is
// not among them: Korean puts spaces between words.
bool IsUnspacedScript(char32_t c);

// Whether `c` belongs to the character before it (Unicode's grapheme cluster rules: a combining
// or spacing mark, ZWJ, ZWNJ, a variation selector, an emoji modifier): text is never cut before
// it. From ICU's Grapheme_Cluster_Break property.
bool ContinuesCluster(char32_t c);

// What goes between the committed text of one utterance and the next's first committed text so
// that the stream's committed text reads as one transcript (API.md 2.1): a space, or nothing when
// either side is empty, already has whitespace at the join, is in an unspaced script there, or
// the later text opens with closing punctuation (",.;:!?)]}%") or a mark. The carried context
// joins utterances the same way.
std::string UtteranceSeparator(absl::string_view before, absl::string_view after);

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_TEXT_SCRIPTS_H_
