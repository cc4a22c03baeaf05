// Qwen2 tokenizer: byte-level BPE with NFC normalisation, the Qwen2 split regex and added/special
// tokens matched whole; encode text -> ids, decode ids -> text (invalid UTF-8 becomes U+FFFD, as
// HF's errors="replace"). Owned by whoever loads the model (one per checkpoint); immutable after
// load except for an internal word cache, so every const method is safe to call from many threads
// at once.
#ifndef SPEECHLLM_ENGINE_MODEL_TOKENIZER_TOKENIZER_H_
#define SPEECHLLM_ENGINE_MODEL_TOKENIZER_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "engine/model/tokenizer/added_token_matcher.h"
#include "engine/model/tokenizer/bpe.h"
#include "engine/model/tokenizer/pre_tokenizer.h"
#include "engine/model/tokenizer/tokenizer_files.h"

namespace speechllm::engine::tokenizer {

struct TokenizerOptions {
  // Words cached by the BPE (0 disables the cache, e.g. for cold-cache benchmarks).
  size_t bpe_cache_capacity_words = BpeModel::kDefaultCacheCapacityWords;
};

struct DecodeOptions {
  bool skip_special_tokens = false;  // drop added tokens marked "special" (HF skip_special_tokens)
  // Drop added tokens whose whole content is a `<|...|>` tag, special or not (language and task
  // tags): Qwen's ASR eval removes any `<|...|>` left after decoding (MODEL.md 5.1). Text shown to
  // users sets it.
  bool skip_tag_tokens = false;
  // Drop ids with no token, as HF's decode does, instead of OUT_OF_RANGE. A model's vocab_size can
  // exceed its tokenizer (Qwen2-Audio-7B: 156,032 logits), so text shown to users sets it: one
  // stray id must not blank a whole hypothesis.
  bool skip_unknown_ids = false;
};

class Tokenizer {
 public:
  // Loaders. Every error names the file and the problem (see tokenizer_files.h and FromSpec).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromDirectory(
      const std::string& dir, const TokenizerOptions& options = {});
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromTokenizerJson(
      const std::string& path, const TokenizerOptions& options = {});
  // `config_path` (tokenizer_config.json with added_tokens_decoder) may be empty.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromVocabAndMerges(
      const std::string& vocab_path, const std::string& merges_path, const std::string& config_path,
      const TokenizerOptions& options = {});
  // Validates `spec`: INVALID_ARGUMENT (naming spec.source) for a vocabulary token with a character
  // outside the byte-level alphabet ("unknown byte"), a missing single-byte token, two tokens with
  // one id, a merge naming an unknown token or producing a token not in the vocabulary, an added
  // token that reuses a vocabulary id with other content, duplicate added tokens, a bad regex.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromSpec(const TokenizerSpec& spec,
                                                             const TokenizerOptions& options = {});

  // Token ids of `text` (no BOS/EOS is added; Qwen2 has none). INVALID_ARGUMENT if `text` is not
  // valid UTF-8 (names the byte offset).
  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text) const;
  // Same, appending to `ids` (lets callers reuse one vector).
  absl::Status EncodeAppend(absl::string_view text, std::vector<int32_t>* ids) const;

  // Text of `ids`. OUT_OF_RANGE naming the id if one is not in the vocabulary.
  absl::StatusOr<std::string> Decode(absl::Span<const int32_t> ids,
                                     const DecodeOptions& options = {}) const;

  // Raw bytes that token `id` stands for (may be part of a UTF-8 character); nullopt if unknown.
  std::optional<absl::string_view> TokenBytes(int32_t id) const;
  // Vocabulary string of `id` (byte-level form, or an added token's content); nullopt if unknown.
  std::optional<std::string> IdToToken(int32_t id) const;
  // Id of a vocabulary string or added-token content; nullopt if unknown.
  std::optional<int32_t> TokenToId(absl::string_view token) const;
  // Id of the added token with this content; NOT_FOUND naming the token and the files otherwise.
  absl::StatusOr<int32_t> AddedTokenId(absl::string_view content) const;

  bool IsKnown(int32_t id) const;
  bool IsAdded(int32_t id) const;
  bool IsSpecial(int32_t id) const;
  // An added token whose content is `<|`, then no `|`, then `|>` (DecodeOptions::skip_tag_tokens).
  bool IsTag(int32_t id) const;

  // Largest id + 1 (ids need not be contiguous).
  int32_t id_limit() const { return static_cast<int32_t>(entries_.size()); }
  size_t num_base_tokens() const { return num_base_tokens_; }
  size_t num_merges() const { return bpe_->num_merges(); }
  const std::vector<AddedToken>& added_tokens() const { return added_tokens_; }
  const std::string& source() const { return source_; }
  const BpeModel& bpe() const { return *bpe_; }

 private:
  struct Entry {
    std::string token;  // byte-level string, or added content
    std::string bytes;  // what decode emits
    bool known = false;
    bool added = false;
    bool special = false;
    bool tag = false;  // added, content `<|...|>`
  };

  Tokenizer() = default;
  // Normalises, splits and BPE-encodes text that holds no added token.
  absl::Status EncodeOrdinary(absl::string_view text, std::vector<int32_t>* ids) const;

  std::string source_;
  std::vector<Entry> entries_;  // indexed by id
  absl::flat_hash_map<std::string, int32_t> token_to_id_;
  std::vector<AddedToken> added_tokens_;
  size_t num_base_tokens_ = 0;
  bool nfc_ = true;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> bpe_;
  std::unique_ptr<AddedTokenMatcher> added_matcher_;
};

}  // namespace speechllm::engine::tokenizer

#endif  // SPEECHLLM_ENGINE_MODEL_TOKENIZER_TOKENIZER_H_
