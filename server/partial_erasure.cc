#include "server/partial_erasure.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "engine/model/tokenizer/utf8.h"
#include "streaming/text_scripts.h"

namespace speechllm::server {

std::vector<std::string> DisplayedWords(absl::string_view text) {
  std::vector<std::string> words;
  std::string word;
  auto end_word = [&] {
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  };
  for (size_t pos = 0; pos < text.size();) {
    char32_t c = 0;
    size_t length = engine::tokenizer::DecodeUtf8At(text, pos, &c);
    if (length == 0) {  // ill-formed: one byte, part of the current word
      word.push_back(text[pos]);
      ++pos;
      continue;
    }
    if (c < 0x80 && absl::ascii_isspace(static_cast<unsigned char>(c))) {
      end_word();
    } else if (streaming::IsUnspacedScript(c)) {  // each character a word; not Hangul
      end_word();
      words.emplace_back(text.substr(pos, length));
    } else {
      word.append(text.data() + pos, length);
    }
    pos += length;
  }
  end_word();
  return words;
}

std::optional<double> PartialErasure::Update(const streaming::TranscriptEvent& update) {
  Utterance& utterance = utterances_[update.utterance_id];
  utterance.committed_text += update.committed_delta;
  std::vector<std::string> words = DisplayedWords(
      update.is_final ? utterance.committed_text : utterance.committed_text + update.tentative);
  const std::vector<std::string>& shown = utterance.displayed_words;
  const auto [kept, next] = std::mismatch(shown.begin(), shown.end(), words.begin(), words.end());
  int64_t erased = std::distance(kept, shown.end());
  // A last word that only grew ("hel" -> "hello") was extended, not erased.
  if (erased == 1 && next != words.end() && absl::StartsWith(*next, shown.back())) erased = 0;
  utterance.erased_words += erased;
  utterance.displayed_words = std::move(words);
  if (!update.is_final) return std::nullopt;
  std::optional<double> ratio;
  if (!utterance.displayed_words.empty()) {
    ratio = static_cast<double>(utterance.erased_words) /
            static_cast<double>(utterance.displayed_words.size());
  }
  utterances_.erase(update.utterance_id);
  return ratio;
}

}  // namespace speechllm::server
