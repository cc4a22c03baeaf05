// PromptSource: how the server builds a segment's prompt ids around the audio: fixed raw ids
// (--prompt_prefix_ids / --prompt_suffix_ids, for test models without chat tokens) or the
// tokenizer's Qwen2-Audio chat template / base-model prompt with an instruction, to which a
// stream's RecognitionContext (prompt text, phrases) is added. Immutable after creation; any
// thread.
#ifndef SPEECHLLM_SERVER_PROMPT_SOURCE_H_
#define SPEECHLLM_SERVER_PROMPT_SOURCE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/model/tokenizer/prompt_builder.h"
#include "streaming/session_config.h"

namespace speechllm::server {

struct ContextText {
  std::string prompt;
  std::vector<std::string> phrases;
  std::string previous_text;  // the end of the stream's earlier utterances (carried context)
  // The stream's language (BCP-47; ResolveLanguage), for "{language}" in the instruction; empty:
  // the server's default.
  std::string language;
  bool empty() const { return prompt.empty() && phrases.empty() && previous_text.empty(); }
};

// Comma-separated token ids ("151644, 8948"), as --prompt_prefix_ids takes them; INVALID_ARGUMENT
// naming the first piece that is not an integer.
absl::StatusOr<std::vector<int64_t>> ParseTokenIds(absl::string_view text);

class PromptSource {
 public:
  enum class Kind { kIds, kChat, kBase };

  static PromptSource FromIds(std::vector<int64_t> prefix_ids, std::vector<int64_t> suffix_ids);
  // `tokenizer` must outlive the source. NOT_FOUND when its special tokens are missing.
  static absl::StatusOr<PromptSource> FromTemplate(const engine::tokenizer::Tokenizer* tokenizer,
                                                   Kind kind, std::string instruction);
  // The server's prompt from its flags: raw `prefix_ids` and `suffix_ids` (ParseTokenIds; both or
  // neither), else `tokenizer`'s template `template_kind` ("chat" or "base") with `instruction`.
  // INVALID_ARGUMENT naming the flag at fault.
  static absl::StatusOr<PromptSource> FromFlags(const engine::tokenizer::Tokenizer* tokenizer,
                                                absl::string_view prefix_ids,
                                                absl::string_view suffix_ids,
                                                absl::string_view template_kind,
                                                std::string instruction);

  // The prompt without context, checked against the server's flags: context carried between
  // utterances needs a template, and the part after the audio must fit
  // `max_prompt_suffix_tokens`. INVALID_ARGUMENT naming the flag otherwise.
  absl::StatusOr<streaming::PromptConfig> PlainPrompt(int carry_context_chars,
                                                      int64_t max_prompt_suffix_tokens) const;

  Kind kind() const { return kind_; }
  // The language "{language}" stands for when a stream has none (the first of --languages).
  void set_default_language(std::string code) { default_language_ = std::move(code); }
  bool supports_context() const { return kind_ != Kind::kIds; }
  // The prompt for a stream with `context`. FAILED_PRECONDITION for a context with raw ids.
  absl::StatusOr<streaming::PromptConfig> Build(const ContextText& context) const;
  // INVALID_ARGUMENT naming the first added token (`<|im_end|>`, `<|AUDIO|>`, ..., marked special
  // or not) in a client's context text: the template's encoder matches them all, so they would end
  // the instruction, open turns of the client's making or claim an audio clip that is not there.
  // Also for more than kMaxCombiningMarksInARow combining marks in a row (NFC's quadratic case).
  absl::Status CheckContextText(absl::string_view text) const;
  static constexpr int64_t kMaxCombiningMarksInARow = 30;
  // The tokens before the audio. The same whatever the context: in both templates the context and
  // phrases go into the instruction, which follows the audio. The engine reserves KV for this
  // many prefix tokens per stream instead of its general bound.
  int64_t prefix_tokens() const;

 private:
  // `text` with every special token's text removed.
  std::string WithoutSpecialTokens(std::string text) const;

  Kind kind_ = Kind::kIds;
  std::vector<int64_t> prefix_ids_, suffix_ids_;
  const engine::tokenizer::Tokenizer* tokenizer_ = nullptr;
  std::string instruction_;
  std::string default_language_;
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_PROMPT_SOURCE_H_
