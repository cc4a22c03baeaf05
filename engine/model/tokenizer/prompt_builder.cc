#include "engine/model/tokenizer/prompt_builder.h"

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"

namespace speechllm::engine::tokenizer {
namespace {

constexpr char kEndOfText[] = "<|endoftext|>";
constexpr char kImStart[] = "<|im_start|>";
constexpr char kImEnd[] = "<|im_end|>";
constexpr char kAudio[] = "<|AUDIO|>";
constexpr char kAudioBos[] = "<|audio_bos|>";
constexpr char kAudioEos[] = "<|audio_eos|>";

}  // namespace

absl::StatusOr<Qwen2AudioSpecialTokens> Qwen2AudioSpecialTokens::FromTokenizer(
    const Tokenizer& tokenizer) {
  Qwen2AudioSpecialTokens s;
  SPEECHLLM_ASSIGN_OR_RETURN(s.endoftext, tokenizer.AddedTokenId(kEndOfText));
  SPEECHLLM_ASSIGN_OR_RETURN(s.im_start, tokenizer.AddedTokenId(kImStart));
  SPEECHLLM_ASSIGN_OR_RETURN(s.im_end, tokenizer.AddedTokenId(kImEnd));
  SPEECHLLM_ASSIGN_OR_RETURN(s.audio, tokenizer.AddedTokenId(kAudio));
  SPEECHLLM_ASSIGN_OR_RETURN(s.audio_bos, tokenizer.AddedTokenId(kAudioBos));
  SPEECHLLM_ASSIGN_OR_RETURN(s.audio_eos, tokenizer.AddedTokenId(kAudioEos));
  return s;
}

absl::StatusOr<PromptBuilder> PromptBuilder::Create(const Tokenizer* tokenizer) {
  SPEECHLLM_ASSIGN_OR_RETURN(const Qwen2AudioSpecialTokens special,
                             Qwen2AudioSpecialTokens::FromTokenizer(*tokenizer));
  return PromptBuilder(tokenizer, special);
}

std::string PromptBuilder::RenderChat(const std::vector<ChatMessage>& messages,
                                      bool add_generation_prompt) const {
  // HF Qwen2AudioProcessor.default_chat_template, written out.
  std::string text;
  int audio_number = 0;  // counts audios from 1 across the whole conversation
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (i == 0 && m.role != "system") {
      absl::StrAppend(&text, kImStart, "system\n", kDefaultSystemPrompt, kImEnd, "\n");
    }
    absl::StrAppend(&text, kImStart, m.role, "\n");
    for (const ContentItem& item : m.content) {
      if (item.kind == ContentItem::Kind::kAudio) {
        absl::StrAppend(&text, "Audio ", ++audio_number, ": ", kAudioBos, kAudio, kAudioEos, "\n");
      } else {
        text += item.text;
      }
    }
    absl::StrAppend(&text, kImEnd, "\n");
  }
  if (add_generation_prompt) absl::StrAppend(&text, kImStart, "assistant\n");
  return text;
}

absl::StatusOr<Prompt> PromptBuilder::BuildChat(const std::vector<ChatMessage>& messages,
                                                bool add_generation_prompt) const {
  std::vector<int64_t> counts;
  for (const ChatMessage& m : messages) {
    for (const ContentItem& item : m.content) {
      if (item.kind == ContentItem::Kind::kAudio) counts.push_back(item.num_audio_tokens);
    }
  }
  return BuildFromText(RenderChat(messages, add_generation_prompt), counts);
}

absl::StatusOr<Prompt> PromptBuilder::BuildBase(int64_t num_audio_tokens,
                                                absl::string_view instruction) const {
  const int64_t counts[] = {num_audio_tokens};
  return BuildFromText(absl::StrCat(kAudioBos, kAudio, kAudioEos, instruction), counts);
}

absl::StatusOr<AudioRequestPrompt> PromptBuilder::BuildAudioRequest(
    PromptTemplate kind, absl::string_view instruction) const {
  absl::StatusOr<Prompt> prompt;
  if (kind == PromptTemplate::kChat) {
    const ChatMessage user{"user",
                           {ContentItem::Audio(1), ContentItem::Text(std::string(instruction))}};
    prompt = BuildChat({user}, /*add_generation_prompt=*/true);
  } else {
    prompt = BuildBase(1, instruction);
  }
  if (!prompt.ok()) return prompt.status();
  if (prompt->audio_spans.size() != 1 || prompt->audio_spans[0].num_tokens != 1) {
    return absl::InternalError("the prompt template did not produce one audio placeholder");
  }
  const int64_t audio = prompt->audio_spans[0].first_position;
  AudioRequestPrompt out;
  out.prefix_ids.assign(prompt->ids.begin(), prompt->ids.begin() + audio);
  out.suffix_ids.assign(prompt->ids.begin() + audio + 1, prompt->ids.end());
  return out;
}

std::string PromptBuilder::AsrInstruction(absl::string_view language_code) {
  return absl::StrCat("Detect the language and recognize the speech: <|", language_code, "|>");
}

absl::StatusOr<Prompt> PromptBuilder::BuildFromText(
    absl::string_view text, absl::Span<const int64_t> num_audio_tokens) const {
  SPEECHLLM_ASSIGN_OR_RETURN(const std::vector<int32_t> ids, tokenizer_->Encode(text));
  size_t placeholders = 0;
  for (const int32_t id : ids) placeholders += id == special_.audio ? 1 : 0;
  if (placeholders != num_audio_tokens.size()) {
    return absl::InvalidArgumentError(absl::StrCat("the prompt has ", placeholders, " ", kAudio,
                                                   " placeholders for ", num_audio_tokens.size(),
                                                   " audio clips"));
  }
  Prompt prompt;
  size_t audio_index = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] != special_.audio) {
      prompt.ids.push_back(ids[i]);
      continue;
    }
    const int64_t n = num_audio_tokens[audio_index++];
    // At most 65,536: no model has that many positions (Qwen2-Audio: 750 per 30 s clip), and a
    // count near 2^63 would have asked for that many ids.
    constexpr int64_t kMaxAudioTokensPerClip = 65536;
    if (n < 1 || n > kMaxAudioTokensPerClip) {
      return absl::InvalidArgumentError(absl::StrCat("audio clip ", audio_index, " has ", n,
                                                     " audio tokens; 1 to ", kMaxAudioTokensPerClip,
                                                     " are allowed"));
    }
    const bool has_bos = i > 0 && ids[i - 1] == special_.audio_bos;
    const bool has_eos = i + 1 < ids.size() && ids[i + 1] == special_.audio_eos;
    const bool wrap = !has_bos && !has_eos;
    if (wrap) prompt.ids.push_back(special_.audio_bos);
    prompt.audio_spans.push_back(AudioSpan{static_cast<int64_t>(prompt.ids.size()), n});
    prompt.ids.insert(prompt.ids.end(), static_cast<size_t>(n), special_.audio);
    if (wrap) prompt.ids.push_back(special_.audio_eos);
  }
  return prompt;
}

}  // namespace speechllm::engine::tokenizer
