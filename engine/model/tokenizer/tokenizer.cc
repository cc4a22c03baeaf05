#include "engine/model/tokenizer/tokenizer.h"

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/model/tokenizer/byte_level.h"
#include "engine/model/tokenizer/normalizer.h"
#include "engine/model/tokenizer/scratch.h"
#include "engine/model/tokenizer/utf8.h"
#include "engine/status_macros.h"

namespace speechllm::engine::tokenizer {
namespace {

std::string CodePointName(char32_t cp) {
  return absl::StrFormat("U+%04X", static_cast<uint32_t>(cp));
}

// `<|`, then no `|`, then `|>`: the tags Qwen's ASR eval removes (`<\|.*?\|>`, MODEL.md 5.1).
bool IsTagContent(absl::string_view content) {
  return content.size() >= 4 && absl::StartsWith(content, "<|") && absl::EndsWith(content, "|>") &&
         content.substr(2, content.size() - 4).find('|') == absl::string_view::npos;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromDirectory(
    const std::string& dir, const TokenizerOptions& options) {
  SPEECHLLM_ASSIGN_OR_RETURN(const TokenizerSpec spec, ReadTokenizerDirectory(dir));
  return FromSpec(spec, options);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromTokenizerJson(
    const std::string& path, const TokenizerOptions& options) {
  SPEECHLLM_ASSIGN_OR_RETURN(const TokenizerSpec spec, ReadTokenizerJson(path));
  return FromSpec(spec, options);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromVocabAndMerges(
    const std::string& vocab_path, const std::string& merges_path, const std::string& config_path,
    const TokenizerOptions& options) {
  SPEECHLLM_ASSIGN_OR_RETURN(const TokenizerSpec spec,
                             ReadVocabAndMerges(vocab_path, merges_path, config_path));
  return FromSpec(spec, options);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromSpec(const TokenizerSpec& spec,
                                                               const TokenizerOptions& options) {
  const std::string& src = spec.source;
  auto error = [&src](auto&&... parts) {
    return absl::InvalidArgumentError(absl::StrCat(src, ": ", parts...));
  };
  std::unique_ptr<Tokenizer> tok(new Tokenizer());
  tok->source_ = src;
  tok->nfc_ = spec.nfc;
  tok->num_base_tokens_ = spec.vocab.size();
  if (spec.vocab.empty()) return error("the vocabulary is empty");

  int64_t max_id = 0;
  for (const auto& [token, id] : spec.vocab) max_id = std::max(max_id, id);
  for (const AddedToken& t : spec.added_tokens) max_id = std::max<int64_t>(max_id, t.id);
  if (max_id > kMaxTokenId) return error("token id ", max_id, " is too large");
  tok->entries_.resize(static_cast<size_t>(max_id) + 1);
  tok->token_to_id_.reserve(spec.vocab.size() + spec.added_tokens.size());

  // Base vocabulary: every character must be one of the 256 byte-level characters.
  for (const auto& [token, id] : spec.vocab) {
    if (token.empty()) return error("the vocabulary has an empty token (id ", id, ")");
    char32_t bad = 0;
    std::optional<std::string> bytes = TokenStringToBytes(token, &bad);
    if (!bytes.has_value()) {
      return error("vocabulary token \"", token, "\" (id ", id, ") contains ", CodePointName(bad),
                   ", which is not a byte-level character (unknown byte)");
    }
    Entry& e = tok->entries_[id];
    if (e.known) return error("tokens \"", e.token, "\" and \"", token, "\" share id ", id);
    e = Entry{token, *std::move(bytes), true, false, false};
    tok->token_to_id_.emplace(token, static_cast<int32_t>(id));
  }

  std::array<int32_t, 256> byte_ids{};
  for (int b = 0; b < 256; ++b) {
    const std::string token = BytesToTokenString(std::string(1, static_cast<char>(b)));
    const auto it = tok->token_to_id_.find(token);
    if (it == tok->token_to_id_.end()) {
      return error(
          absl::StrFormat("the vocabulary has no token for byte 0x%02X (\"%s\")", b, token));
    }
    byte_ids[b] = it->second;
  }

  std::vector<MergeRule> rules;
  rules.reserve(spec.merges.size());
  for (size_t i = 0; i < spec.merges.size(); ++i) {
    const auto& [left, right] = spec.merges[i];
    const auto l = tok->token_to_id_.find(left);
    const auto r = tok->token_to_id_.find(right);
    if (l == tok->token_to_id_.end() || r == tok->token_to_id_.end()) {
      return error("merge #", i, " \"", left, " ", right, "\" names unknown token \"",
                   l == tok->token_to_id_.end() ? left : right, "\"");
    }
    const auto result = tok->token_to_id_.find(absl::StrCat(left, right));
    if (result == tok->token_to_id_.end()) {
      return error("merge #", i, " \"", left, " ", right, "\" makes \"", left, right,
                   "\", which is not in the vocabulary");
    }
    rules.push_back(MergeRule{l->second, r->second, result->second});
  }
  absl::StatusOr<std::unique_ptr<BpeModel>> bpe =
      BpeModel::Create(byte_ids, rules, options.bpe_cache_capacity_words);
  if (!bpe.ok()) return error(bpe.status().message());
  tok->bpe_ = *std::move(bpe);

  // Added tokens: whole strings, possibly reusing the id of the identical vocabulary token.
  absl::flat_hash_set<std::string> added_contents;
  absl::flat_hash_set<int32_t> added_ids;
  for (const AddedToken& t : spec.added_tokens) {
    if (t.content.empty()) return error("added token id ", t.id, " has empty content");
    if (FirstInvalidUtf8Offset(t.content) != t.content.size()) {
      return error("added token id ", t.id, " is not valid UTF-8");
    }
    if (!added_contents.insert(t.content).second)
      return error("added token \"", t.content, "\" appears twice");
    if (!added_ids.insert(t.id).second) return error("two added tokens have id ", t.id);
    Entry& e = tok->entries_[t.id];
    if (e.known && e.token != t.content) {
      return error("added token \"", t.content, "\" reuses id ", t.id, " of vocabulary token \"",
                   e.token, "\"");
    }
    // Decoded like HF's ByteLevel decoder: through the byte map when every character is in it,
    // otherwise as the content's own UTF-8.
    std::optional<std::string> bytes = TokenStringToBytes(t.content);
    e = Entry{t.content, bytes.has_value() ? *std::move(bytes) : t.content,
              true,      true,
              t.special, IsTagContent(t.content)};
    tok->token_to_id_[t.content] = t.id;
    tok->added_tokens_.push_back(t);
  }
  tok->added_matcher_ = std::make_unique<AddedTokenMatcher>(tok->added_tokens_);

  absl::StatusOr<std::unique_ptr<PreTokenizer>> pre =
      PreTokenizer::Create(spec.split_pattern.empty() ? kQwen2SplitPattern : spec.split_pattern);
  if (!pre.ok()) return error(pre.status().message());
  tok->pre_tokenizer_ = *std::move(pre);
  return tok;
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(absl::string_view text) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  SPEECHLLM_RETURN_IF_ERROR(EncodeAppend(text, &ids));
  return ids;
}

absl::Status Tokenizer::EncodeAppend(absl::string_view text, std::vector<int32_t>* ids) const {
  const size_t bad = FirstInvalidUtf8Offset(text);
  if (bad != text.size()) {
    return absl::InvalidArgumentError(absl::StrCat("input text is not valid UTF-8 at byte ", bad));
  }
  size_t pos = 0;
  AddedTokenMatcher::Match match;
  while (pos < text.size()) {
    const bool found = added_matcher_->FindNext(text, pos, &match);
    const size_t end = found ? match.begin : text.size();
    if (end > pos) SPEECHLLM_RETURN_IF_ERROR(EncodeOrdinary(text.substr(pos, end - pos), ids));
    if (!found) break;
    ids->push_back(match.id);
    pos = match.end;
  }
  return absl::OkStatus();
}

absl::Status Tokenizer::EncodeOrdinary(absl::string_view text, std::vector<int32_t>* ids) const {
  // Per-thread scratch, reused: no allocation per call once warm. A huge input's is freed when the
  // call returns (scratch.h).
  thread_local std::string normalized;
  thread_local std::vector<absl::string_view> pieces;
  const absl::Cleanup release = [] {
    ReleaseIfLarge(normalized);
    ReleaseIfLarge(pieces);
  };
  absl::string_view input = text;
  if (nfc_) {
    SPEECHLLM_ASSIGN_OR_RETURN(const bool unchanged, NfcIfNeeded(text, &normalized));
    if (!unchanged) input = normalized;
  }
  pieces.clear();
  SPEECHLLM_RETURN_IF_ERROR(pre_tokenizer_->Split(input, &pieces));
  for (absl::string_view piece : pieces) bpe_->EncodeWord(piece, ids);
  return absl::OkStatus();
}

absl::StatusOr<std::string> Tokenizer::Decode(absl::Span<const int32_t> ids,
                                              const DecodeOptions& options) const {
  std::string bytes;
  for (const int32_t id : ids) {
    if (!IsKnown(id)) {
      if (options.skip_unknown_ids) continue;
      return absl::OutOfRangeError(
          absl::StrCat("token id ", id, " is not in the vocabulary of ", source_));
    }
    const Entry& e = entries_[id];
    if ((options.skip_special_tokens && e.special) || (options.skip_tag_tokens && e.tag)) continue;
    bytes += e.bytes;
  }
  std::string text;
  text.reserve(bytes.size());
  AppendUtf8Lossy(bytes, /*final=*/true, &text);
  return text;
}

bool Tokenizer::IsKnown(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < entries_.size() && entries_[id].known;
}
bool Tokenizer::IsAdded(int32_t id) const { return IsKnown(id) && entries_[id].added; }
bool Tokenizer::IsSpecial(int32_t id) const { return IsKnown(id) && entries_[id].special; }

bool Tokenizer::IsTag(int32_t id) const { return IsKnown(id) && entries_[id].tag; }

std::optional<absl::string_view> Tokenizer::TokenBytes(int32_t id) const {
  if (!IsKnown(id)) return std::nullopt;
  return absl::string_view(entries_[id].bytes);
}

std::optional<std::string> Tokenizer::IdToToken(int32_t id) const {
  if (!IsKnown(id)) return std::nullopt;
  return entries_[id].token;
}

std::optional<int32_t> Tokenizer::TokenToId(absl::string_view token) const {
  const auto it = token_to_id_.find(token);
  if (it == token_to_id_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<int32_t> Tokenizer::AddedTokenId(absl::string_view content) const {
  const std::optional<int32_t> id = TokenToId(content);
  if (!id.has_value() || !IsAdded(*id)) {
    return absl::NotFoundError(
        absl::StrCat("token \"", content, "\" is not an added token of ", source_));
  }
  return *id;
}

}  // namespace speechllm::engine::tokenizer
