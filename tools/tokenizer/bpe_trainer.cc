#include "tools/tokenizer/bpe_trainer.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "engine/model/tokenizer/byte_level.h"
#include "engine/model/tokenizer/normalizer.h"
#include "engine/model/tokenizer/pre_tokenizer.h"
#include "engine/model/tokenizer/utf8.h"
#include "engine/status_macros.h"
#include "nlohmann/json.hpp"

namespace speechllm::tools {
namespace {

namespace tok = ::speechllm::engine::tokenizer;
using ordered_json = nlohmann::ordered_json;

struct Word {
  std::vector<int32_t> symbols;
  int64_t count = 0;
};

uint64_t PairKey(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

// Hands out ids in increasing order, skipping the ones reserved for special tokens.
class IdAllocator {
 public:
  explicit IdAllocator(std::set<int32_t> reserved) : reserved_(std::move(reserved)) {}
  int32_t Next() {
    while (reserved_.count(next_) > 0) ++next_;
    return next_++;
  }

 private:
  std::set<int32_t> reserved_;
  int32_t next_ = 0;
};

ordered_json ByteLevelStep() {
  return ordered_json{{"type", "ByteLevel"},
                      {"add_prefix_space", false},
                      {"trim_offsets", false},
                      {"use_regex", false}};
}

}  // namespace

absl::StatusOr<std::vector<std::pair<std::string, int32_t>>> ParseSpecialTokens(
    absl::string_view spec) {
  std::vector<std::pair<std::string, int32_t>> tokens;
  for (absl::string_view item : absl::StrSplit(spec, ',', absl::SkipWhitespace())) {
    const size_t eq = item.rfind('=');
    int32_t id = -1;
    if (eq == absl::string_view::npos || eq == 0 || !absl::SimpleAtoi(item.substr(eq + 1), &id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("special token \"", item, "\" is not CONTENT=ID"));
    }
    tokens.emplace_back(std::string(absl::StripAsciiWhitespace(item.substr(0, eq))), id);
  }
  return tokens;
}

absl::StatusOr<BpeTrainingResult> TrainByteLevelBpe(absl::string_view corpus,
                                                    const BpeTrainerOptions& options) {
  // Options.
  std::set<int32_t> reserved;
  std::set<std::string> special_contents;
  for (const auto& [content, id] : options.special_tokens) {
    if (content.empty() || id < 0 || id >= options.vocab_size || !reserved.insert(id).second ||
        !special_contents.insert(content).second) {
      return absl::InvalidArgumentError(absl::StrCat("special token \"", content, "\"=", id,
                                                     " is empty, out of range or repeated"));
    }
  }
  const int64_t base_size = options.vocab_size - static_cast<int64_t>(reserved.size());
  if (base_size < 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("vocab size ", options.vocab_size, " leaves no room for the 256 byte tokens"));
  }
  const size_t bad = tok::FirstInvalidUtf8Offset(corpus);
  if (bad != corpus.size()) {
    return absl::InvalidArgumentError(absl::StrCat("corpus is not valid UTF-8 at byte ", bad));
  }

  // Words: NFC, then the split regex, as the tokenizer does at encode time.
  SPEECHLLM_ASSIGN_OR_RETURN(const std::string normalized, tok::ToNfc(corpus));
  SPEECHLLM_ASSIGN_OR_RETURN(auto pre, tok::PreTokenizer::Create(tok::kQwen2SplitPattern));
  std::vector<absl::string_view> pieces;
  SPEECHLLM_RETURN_IF_ERROR(pre->Split(normalized, &pieces));
  std::map<std::string, int64_t> word_counts;  // ordered: deterministic word list
  for (absl::string_view piece : pieces) ++word_counts[std::string(piece)];

  // Byte tokens.
  IdAllocator ids(reserved);
  std::map<int32_t, std::string> token_bytes;  // id -> raw bytes
  absl::flat_hash_map<std::string, int32_t> id_of_bytes;
  std::array<int32_t, 256> byte_id{};
  std::vector<int> bytes_in_listing_order(256);
  for (int b = 0; b < 256; ++b) bytes_in_listing_order[tok::ByteListingIndex(b)] = b;
  for (int b : bytes_in_listing_order) {
    byte_id[b] = ids.Next();
    token_bytes[byte_id[b]] = std::string(1, static_cast<char>(b));
    id_of_bytes[token_bytes[byte_id[b]]] = byte_id[b];
  }
  std::vector<Word> words;
  words.reserve(word_counts.size());
  for (const auto& [text, count] : word_counts) {
    Word w;
    w.count = count;
    for (char c : text) w.symbols.push_back(byte_id[static_cast<uint8_t>(c)]);
    words.push_back(std::move(w));
  }

  // Merges.
  std::vector<std::pair<int32_t, int32_t>> merges;
  int64_t num_tokens = 256;
  while (num_tokens < base_size) {
    absl::flat_hash_map<uint64_t, int64_t> pair_counts;
    for (const Word& w : words) {
      for (size_t i = 0; i + 1 < w.symbols.size(); ++i) {
        pair_counts[PairKey(w.symbols[i], w.symbols[i + 1])] += w.count;
      }
    }
    if (pair_counts.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("the corpus yields only ", num_tokens,
                                                     " tokens; vocab size ", options.vocab_size,
                                                     " needs a larger corpus"));
    }
    int32_t best_left = -1, best_right = -1;
    int64_t best_count = -1;
    for (const auto& [key, count] : pair_counts) {
      const auto left = static_cast<int32_t>(key >> 32);
      const auto right = static_cast<int32_t>(key & 0xFFFFFFFFu);
      const bool better = count > best_count ||
                          (count == best_count &&
                           std::make_pair(token_bytes[left], token_bytes[right]) <
                               std::make_pair(token_bytes[best_left], token_bytes[best_right]));
      if (better) {
        best_left = left;
        best_right = right;
        best_count = count;
      }
    }
    const std::string merged = token_bytes[best_left] + token_bytes[best_right];
    int32_t merged_id;
    if (const auto it = id_of_bytes.find(merged); it != id_of_bytes.end()) {
      merged_id = it->second;  // another pair already made this string: reuse its id
    } else {
      merged_id = ids.Next();
      token_bytes[merged_id] = merged;
      id_of_bytes[merged] = merged_id;
      ++num_tokens;
    }
    merges.emplace_back(best_left, best_right);
    for (Word& w : words) {  // apply left to right, non-overlapping
      std::vector<int32_t> out;
      out.reserve(w.symbols.size());
      for (size_t i = 0; i < w.symbols.size(); ++i) {
        if (i + 1 < w.symbols.size() && w.symbols[i] == best_left &&
            w.symbols[i + 1] == best_right) {
          out.push_back(merged_id);
          ++i;
        } else {
          out.push_back(w.symbols[i]);
        }
      }
      w.symbols = std::move(out);
    }
  }

  // tokenizer.json.
  ordered_json added = ordered_json::array();
  std::vector<std::pair<int32_t, std::string>> specials_by_id;
  for (const auto& [content, id] : options.special_tokens) specials_by_id.emplace_back(id, content);
  std::sort(specials_by_id.begin(), specials_by_id.end());
  for (const auto& [id, content] : specials_by_id) {
    added.push_back({{"id", id},
                     {"content", content},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  ordered_json vocab = ordered_json::object();
  for (const auto& [id, bytes] : token_bytes) vocab[tok::BytesToTokenString(bytes)] = id;
  ordered_json merge_list = ordered_json::array();
  for (const auto& [left, right] : merges) {
    merge_list.push_back(
        {tok::BytesToTokenString(token_bytes[left]), tok::BytesToTokenString(token_bytes[right])});
  }
  ordered_json root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  root["added_tokens"] = added;
  root["normalizer"] = {{"type", "NFC"}};
  root["pre_tokenizer"] = {{"type", "Sequence"},
                           {"pretokenizers",
                            {{{"type", "Split"},
                              {"pattern", {{"Regex", tok::kQwen2SplitPattern}}},
                              {"behavior", "Isolated"},
                              {"invert", false}},
                             ByteLevelStep()}}};
  root["post_processor"] = ByteLevelStep();
  root["decoder"] = ByteLevelStep();
  // The model is written by hand so that each vocabulary entry and each merge takes one line (as in
  // published tokenizer.json files) instead of nlohmann's one value per line.
  root["model"] = "@MODEL@";
  std::string model =
      "{\n    \"type\": \"BPE\",\n    \"dropout\": null,\n    \"unk_token\": null,\n"
      "    \"continuing_subword_prefix\": \"\",\n    \"end_of_word_suffix\": \"\",\n"
      "    \"fuse_unk\": false,\n    \"byte_fallback\": false,\n    \"ignore_merges\": false,\n"
      "    \"vocab\": {";
  const char* separator = "\n";
  for (const auto& [key, value] : vocab.items()) {
    absl::StrAppend(&model, separator, "      ", ordered_json(key).dump(), ": ", value.dump());
    separator = ",\n";
  }
  model += "\n    },\n    \"merges\": [";
  separator = "\n";
  for (const ordered_json& m : merge_list) {
    absl::StrAppend(&model, separator, "      ", m.dump());
    separator = ",\n";
  }
  model += "\n    ]\n  }";
  std::string text = root.dump(2);
  const size_t at = text.find("\"@MODEL@\"");
  text.replace(at, std::string("\"@MODEL@\"").size(), model);
  BpeTrainingResult result;
  result.tokenizer_json = text + "\n";
  result.num_merges = static_cast<int32_t>(merges.size());
  result.num_distinct_words = static_cast<int64_t>(words.size());
  return result;
}

}  // namespace speechllm::tools
