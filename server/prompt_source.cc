#include "server/prompt_source.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "engine/model/tokenizer/normalizer.h"
#include "engine/model/tokenizer/tokenizer.h"
#include "engine/status_macros.h"
#include "server/languages.h"

namespace speechllm::server {

absl::StatusOr<std::vector<int64_t>> ParseTokenIds(absl::string_view text) {
  std::vector<int64_t> ids;
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int64_t id;
    if (!absl::SimpleAtoi(piece, &id))
      return absl::InvalidArgumentError(absl::StrCat("not a token id: ", piece));
    ids.push_back(id);
  }
  return ids;
}

PromptSource PromptSource::FromIds(std::vector<int64_t> prefix_ids,
                                   std::vector<int64_t> suffix_ids) {
  PromptSource source;
  source.kind_ = Kind::kIds;
  source.prefix_ids_ = std::move(prefix_ids);
  source.suffix_ids_ = std::move(suffix_ids);
  return source;
}

absl::StatusOr<PromptSource> PromptSource::FromTemplate(
    const engine::tokenizer::Tokenizer* tokenizer, Kind kind, std::string instruction) {
  auto builder = engine::tokenizer::PromptBuilder::Create(tokenizer);
  if (!builder.ok()) return builder.status();
  PromptSource source;
  source.kind_ = kind;
  source.tokenizer_ = tokenizer;
  source.instruction_ = std::move(instruction);
  if (auto built = source.Build({}); !built.ok()) return built.status();
  return source;
}

absl::StatusOr<streaming::PromptConfig> PromptSource::Build(const ContextText& context) const {
  if (kind_ == Kind::kIds) {
    if (!context.empty()) {
      return absl::FailedPreconditionError(
          "this server uses fixed prompt ids: recognition context is unavailable");
    }
    return streaming::PromptConfig{prefix_ids_, suffix_ids_, nullptr};
  }
  // "{language}" becomes the stream's language subtag (Qwen's ASR prompts end in a tag such as
  // <|en|>, MODEL.md 7).
  std::string instruction = absl::StrReplaceAll(
      instruction_, {{"{language}", PrimarySubtag(context.language.empty() ? default_language_
                                                                           : context.language)}});
  // Context goes into the instruction text ahead of the audio's transcription request (API.md 2.1:
  // its effect on the model is heuristic).
  if (!context.prompt.empty())
    instruction = absl::StrCat("Context: ", context.prompt, "\n", instruction);
  if (!context.phrases.empty()) {
    instruction = absl::StrCat("Words that may occur: ", absl::StrJoin(context.phrases, ", "),
                               ".\n", instruction);
  }
  if (!context.previous_text.empty()) {
    // The stream's own earlier text: the client's words as the model heard them, which may spell
    // a special token's text; unlike a client's context (CheckContextText) it cannot be refused.
    instruction = absl::StrCat("Previous text: ", WithoutSpecialTokens(context.previous_text), "\n",
                               instruction);
  }
  auto builder = engine::tokenizer::PromptBuilder::Create(tokenizer_);
  if (!builder.ok()) return builder.status();
  const auto kind = kind_ == Kind::kChat ? engine::tokenizer::PromptTemplate::kChat
                                         : engine::tokenizer::PromptTemplate::kBase;
  SPEECHLLM_ASSIGN_OR_RETURN(engine::tokenizer::AudioRequestPrompt prompt,
                             builder->BuildAudioRequest(kind, instruction));
  streaming::PromptConfig config;
  config.prefix_ids = std::move(prompt.prefix_ids);
  config.suffix_ids = std::move(prompt.suffix_ids);
  return config;
}

std::string PromptSource::WithoutSpecialTokens(std::string text) const {
  if (tokenizer_ == nullptr) return text;
  // Until none is left: removing one may join the halves of another ("<|im_e<|AUDIO|>nd|>").
  for (bool removed = true; removed;) {
    removed = false;
    for (const engine::tokenizer::AddedToken& token : tokenizer_->added_tokens()) {
      if (token.content.empty()) continue;  // special or not: the encoder matches every one
      for (size_t at; (at = text.find(token.content)) != std::string::npos;) {
        text.erase(at, token.content.size());
        removed = true;
      }
    }
  }
  return text;
}

absl::Status PromptSource::CheckContextText(absl::string_view text) const {
  // NFC sorts a run of combining marks in quadratic time: 100 phrases of 1,000 alternating marks
  // cost 69 ms of CPU per config or Control.context, 50 times their size in letters.
  if (const int64_t run = engine::tokenizer::LongestNonStarterRun(text);
      run > kMaxCombiningMarksInARow) {
    return absl::InvalidArgumentError(
        absl::StrCat("holds ", run, " combining marks in a row; at most ", kMaxCombiningMarksInARow,
                     " (Unicode's stream-safe text format, UAX #15)"));
  }
  if (tokenizer_ == nullptr) return absl::OkStatus();
  for (const engine::tokenizer::AddedToken& token : tokenizer_->added_tokens()) {
    // Added tokens not marked special are matched by the encoder all the same (Qwen's language
    // and task tags may be among them), so any added token's text is refused.
    if (!token.content.empty() && text.find(token.content) != absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("holds the control token ", token.content,
                       ", which the prompt template would read as a control token"));
    }
  }
  return absl::OkStatus();
}

int64_t PromptSource::prefix_tokens() const {
  if (kind_ == Kind::kIds) return static_cast<int64_t>(prefix_ids_.size());
  absl::StatusOr<streaming::PromptConfig> built = Build({});
  return built.ok() ? static_cast<int64_t>(built->prefix_ids.size()) : 0;
}

absl::StatusOr<PromptSource> PromptSource::FromFlags(const engine::tokenizer::Tokenizer* tokenizer,
                                                     absl::string_view prefix_ids,
                                                     absl::string_view suffix_ids,
                                                     absl::string_view template_kind,
                                                     std::string instruction) {
  if (prefix_ids.empty() != suffix_ids.empty()) {
    return absl::InvalidArgumentError(
        "--prompt_prefix_ids and --prompt_suffix_ids go together (give both or neither)");
  }
  if (!suffix_ids.empty()) {
    auto prefix = ParseTokenIds(prefix_ids);
    auto suffix = ParseTokenIds(suffix_ids);
    if (!prefix.ok() || !suffix.ok())
      return absl::InvalidArgumentError("bad --prompt_prefix_ids / --prompt_suffix_ids");
    return FromIds(*std::move(prefix), *std::move(suffix));
  }
  if (tokenizer == nullptr) {
    return absl::InvalidArgumentError(
        "the model has no tokenizer: give --prompt_prefix_ids and --prompt_suffix_ids");
  }
  if (template_kind != "chat" && template_kind != "base")
    return absl::InvalidArgumentError("--prompt_template must be chat or base");
  return FromTemplate(tokenizer, template_kind == "chat" ? Kind::kChat : Kind::kBase,
                      std::move(instruction));
}

absl::StatusOr<streaming::PromptConfig> PromptSource::PlainPrompt(
    int carry_context_chars, int64_t max_prompt_suffix_tokens) const {
  if (carry_context_chars > 0 && !supports_context()) {
    return absl::InvalidArgumentError(
        "--carry_context_chars needs the tokenizer's prompt template, not raw prompt ids");
  }
  absl::StatusOr<streaming::PromptConfig> plain = Build({});
  if (!plain.ok() || static_cast<int64_t>(plain->suffix_ids.size()) > max_prompt_suffix_tokens) {
    return absl::InvalidArgumentError(absl::StrCat("the prompt after the audio must hold at most ",
                                                   max_prompt_suffix_tokens,
                                                   " tokens (--max_prompt_suffix_tokens)"));
  }
  return plain;
}

}  // namespace speechllm::server
