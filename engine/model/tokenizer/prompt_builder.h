// Qwen2-Audio prompts as token ids: Instruct chat template (MODEL.md 5.2), base-model prompt (5.3),
// each <|AUDIO|> expanded to its clip's N_tok positions (5.4) with those positions reported so that
// the engine can scatter the audio embeddings there. Special ids come from the tokenizer's
// added-token table. Built once per tokenizer by the model loader; const methods are safe on any
// thread.
#ifndef SPEECHLLM_ENGINE_MODEL_TOKENIZER_PROMPT_BUILDER_H_
#define SPEECHLLM_ENGINE_MODEL_TOKENIZER_PROMPT_BUILDER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "engine/model/tokenizer/tokenizer.h"

namespace speechllm::engine::tokenizer {

// Ids of the Qwen2-Audio special tokens (151643..151648 in the 7B checkpoints; 500..505 in the tiny
// test model), always looked up by content.
struct Qwen2AudioSpecialTokens {
  int32_t endoftext = -1;  // <|endoftext|>
  int32_t im_start = -1;   // <|im_start|>
  int32_t im_end = -1;     // <|im_end|>
  int32_t audio = -1;      // <|AUDIO|>
  int32_t audio_bos = -1;  // <|audio_bos|>
  int32_t audio_eos = -1;  // <|audio_eos|>

  // NOT_FOUND naming the first missing token and the tokenizer files.
  static absl::StatusOr<Qwen2AudioSpecialTokens> FromTokenizer(const Tokenizer& tokenizer);
};

// One item of a message's content list: text, or one audio clip of `num_audio_tokens` encoder
// outputs (N_tok of MODEL.md 2.3, 25 per second of audio).
struct ContentItem {
  enum class Kind { kText, kAudio };
  Kind kind = Kind::kText;
  std::string text;
  int64_t num_audio_tokens = 0;

  static ContentItem Text(std::string text) { return {Kind::kText, std::move(text), 0}; }
  static ContentItem Audio(int64_t num_audio_tokens) {
    return {Kind::kAudio, "", num_audio_tokens};
  }
};

struct ChatMessage {
  std::string role;                  // "system", "user", "assistant"
  std::vector<ContentItem> content;  // a plain string content is one Text item
};

// Where one audio clip's embeddings go: ids[first_position, first_position + num_tokens) are all
// <|AUDIO|>.
struct AudioSpan {
  int64_t first_position = 0;
  int64_t num_tokens = 0;
};

struct Prompt {
  std::vector<int32_t> ids;
  std::vector<AudioSpan> audio_spans;  // in order of the audio clips
};

// A request about one audio clip: the prompt's ids before and after the clip's audio rows (the
// <|AUDIO|> placeholder left out), as the streaming session, the offline transcriber and the
// trainer all feed them.
struct AudioRequestPrompt {
  std::vector<int64_t> prefix_ids;
  std::vector<int64_t> suffix_ids;
};

enum class PromptTemplate {
  kChat,  // system prompt + user turn [audio, instruction] + generation prompt (the Instruct model)
  kBase,  // <|audio_bos|><|AUDIO|><|audio_eos|> + instruction (the base model)
};

class PromptBuilder {
 public:
  static constexpr char kDefaultSystemPrompt[] = "You are a helpful assistant.";

  // `tokenizer` must outlive the builder. NOT_FOUND if one of the special tokens is missing.
  static absl::StatusOr<PromptBuilder> Create(const Tokenizer* tokenizer);

  // The chat template's text, one <|AUDIO|> per audio item (not yet expanded).
  std::string RenderChat(const std::vector<ChatMessage>& messages,
                         bool add_generation_prompt) const;

  // Token ids of the chat template with every audio item expanded. INVALID_ARGUMENT if the text
  // items themselves contain <|AUDIO|> (it would be taken for an audio placeholder, as in HF) or an
  // audio item has num_audio_tokens < 1.
  absl::StatusOr<Prompt> BuildChat(const std::vector<ChatMessage>& messages,
                                   bool add_generation_prompt) const;

  // Base model: <|audio_bos|><|AUDIO|><|audio_eos|> + instruction, the audio expanded.
  absl::StatusOr<Prompt> BuildBase(int64_t num_audio_tokens, absl::string_view instruction) const;

  // The prompt of one audio clip followed by `instruction`, split at the clip. INVALID_ARGUMENT if
  // the instruction contains <|AUDIO|>.
  absl::StatusOr<AudioRequestPrompt> BuildAudioRequest(PromptTemplate kind,
                                                       absl::string_view instruction) const;

  // Qwen's ASR instruction, e.g. AsrInstruction("en") = "Detect the language and recognize the
  // speech: <|en|>".
  static std::string AsrInstruction(absl::string_view language_code);

  // Encodes `text` (special tokens matched whole) and replaces the i-th <|AUDIO|> by
  // num_audio_tokens[i] copies, wrapped in <|audio_bos|> ... <|audio_eos|> when neither is next to
  // it (HF Qwen2AudioProcessor). INVALID_ARGUMENT if the counts differ.
  absl::StatusOr<Prompt> BuildFromText(absl::string_view text,
                                       absl::Span<const int64_t> num_audio_tokens) const;

  const Qwen2AudioSpecialTokens& special_tokens() const { return special_; }

 private:
  PromptBuilder(const Tokenizer* tokenizer, const Qwen2AudioSpecialTokens& special)
      : tokenizer_(tokenizer), special_(special) {}

  const Tokenizer* tokenizer_;
  Qwen2AudioSpecialTokens special_;
};

}  // namespace speechllm::engine::tokenizer

#endif  // SPEECHLLM_ENGINE_MODEL_TOKENIZER_PROMPT_BUILDER_H_
