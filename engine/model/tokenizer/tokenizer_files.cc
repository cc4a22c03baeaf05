#include "engine/model/tokenizer/tokenizer_files.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/status_macros.h"
#include "nlohmann/json.hpp"

namespace speechllm::engine::tokenizer {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat("error while reading ", path));
  return buffer.str();
}

absl::StatusOr<json> ParseJsonFile(const std::string& path) {
  SPEECHLLM_ASSIGN_OR_RETURN(const std::string text, ReadFile(path));
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not valid JSON (", e.what(), ")"));
  }
  if (!root.is_object())
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a JSON object"));
  return root;
}

absl::Status Unsupported(const std::string& path, absl::string_view what) {
  return absl::UnimplementedError(
      absl::StrCat(path, ": ", what, " is not supported by this tokenizer"));
}

absl::StatusOr<int64_t> ReadId(const json& value, const std::string& path, absl::string_view what) {
  if (!value.is_number_integer()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", what, " has a non-integer id ", value.dump()));
  }
  const int64_t id = value.get<int64_t>();
  if (id < 0 || id > kMaxTokenId) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", what, " has id ", id, " outside [0, ", kMaxTokenId, "]"));
  }
  return id;
}

// obj[key], or null when `obj` is not an object or lacks the key (never inserts, never copies).
const json& Member(const json& obj, const char* key) {
  static const json* const kNull = new json();
  if (!obj.is_object()) return *kNull;
  const auto it = obj.find(key);
  return it == obj.end() ? *kNull : *it;
}

bool FlagOf(const json& obj, const char* key) {
  return obj.contains(key) && obj[key].is_boolean() && obj[key].get<bool>();
}

// One added-token object ({"content": ..., "special": ..., ...}); `id` comes from the caller.
absl::StatusOr<AddedToken> ReadAddedToken(const json& obj, int64_t id, const std::string& path) {
  const std::string what = absl::StrCat("added token id ", id);
  if (!obj.is_object() || !obj.contains("content") || !obj["content"].is_string() ||
      obj["content"].get<std::string>().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", what, " has no non-empty \"content\""));
  }
  if (FlagOf(obj, "single_word")) return Unsupported(path, absl::StrCat(what, " with single_word"));
  AddedToken token;
  token.id = static_cast<int32_t>(id);
  token.content = obj["content"].get<std::string>();
  token.special = FlagOf(obj, "special");
  token.lstrip = FlagOf(obj, "lstrip");
  token.rstrip = FlagOf(obj, "rstrip");
  return token;
}

absl::Status ReadNormalizer(const json& normalizer, const std::string& path, bool* nfc) {
  *nfc = false;
  if (normalizer.is_null()) return absl::OkStatus();
  const std::string type = normalizer.value("type", "");
  if (type == "NFC") {
    *nfc = true;
    return absl::OkStatus();
  }
  if (type == "Sequence" && normalizer.contains("normalizers") &&
      normalizer["normalizers"].is_array()) {
    for (const json& n : normalizer["normalizers"])
      SPEECHLLM_RETURN_IF_ERROR(ReadNormalizer(n, path, nfc));
    return absl::OkStatus();
  }
  return Unsupported(path, absl::StrCat("normalizer \"", type, "\""));
}

// Accepts Sequence[Split(Regex, Isolated), ByteLevel(no prefix space, no regex)], Qwen2's pipeline.
absl::Status ReadPreTokenizer(const json& pre, const std::string& path, std::string* pattern) {
  if (!pre.is_object() || pre.value("type", "") != "Sequence" || !pre.contains("pretokenizers") ||
      !pre["pretokenizers"].is_array() || pre["pretokenizers"].size() != 2) {
    return Unsupported(path, "a pre_tokenizer other than Sequence[Split, ByteLevel]");
  }
  const json& split = pre["pretokenizers"][0];
  const json& byte_level = pre["pretokenizers"][1];
  if (split.value("type", "") != "Split" || !split.contains("pattern") ||
      !split["pattern"].is_object() || !split["pattern"].contains("Regex") ||
      !split["pattern"]["Regex"].is_string()) {
    return Unsupported(path, "a pre_tokenizer whose first step is not Split with a Regex pattern");
  }
  if (split.value("behavior", "") != "Isolated" || FlagOf(split, "invert")) {
    return Unsupported(path, "a Split pre_tokenizer that is not behavior Isolated, invert false");
  }
  // HF's ByteLevel runs its GPT-2 regex when use_regex is absent (serde default true).
  if (byte_level.value("type", "") != "ByteLevel" || FlagOf(byte_level, "add_prefix_space") ||
      !byte_level.contains("use_regex") || FlagOf(byte_level, "use_regex")) {
    return Unsupported(
        path, "a second pre_tokenizer step other than ByteLevel without prefix space/regex");
  }
  *pattern = split["pattern"]["Regex"].get<std::string>();
  return absl::OkStatus();
}

absl::Status ReadBpeModel(const json& model, const std::string& path, TokenizerSpec* spec) {
  if (!model.is_object())
    return absl::InvalidArgumentError(absl::StrCat(path, ": no \"model\" object"));
  if (model.contains("type") && model["type"] != "BPE") {
    return Unsupported(path, absl::StrCat("model type ", model["type"].dump()));
  }
  if (model.contains("dropout") && !model["dropout"].is_null())
    return Unsupported(path, "BPE dropout");
  if (FlagOf(model, "byte_fallback")) return Unsupported(path, "byte_fallback");
  if (FlagOf(model, "ignore_merges")) return Unsupported(path, "ignore_merges");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty()) {
      return Unsupported(path, key);
    }
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": model.vocab is missing or not an object"));
  }
  if (!model.contains("merges") || !model["merges"].is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": model.merges is missing or not an array"));
  }
  spec->vocab.reserve(model["vocab"].size());
  for (const auto& [token, id_json] : model["vocab"].items()) {
    SPEECHLLM_ASSIGN_OR_RETURN(const int64_t id,
                               ReadId(id_json, path, absl::StrCat("vocab token \"", token, "\"")));
    spec->vocab.emplace_back(token, id);
  }
  const json& merges = model["merges"];
  spec->merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const json& m = merges[i];
    if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["a", "b"]
      spec->merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
      continue;
    }
    if (m.is_string()) {  // "a b" (older files)
      const std::vector<std::string> parts = absl::StrSplit(m.get<std::string>(), ' ');
      if (parts.size() == 2 && !parts[0].empty() && !parts[1].empty()) {
        spec->merges.emplace_back(parts[0], parts[1]);
        continue;
      }
    }
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": merge #", i, " is neither [\"a\", \"b\"] nor \"a b\": ", m.dump()));
  }
  return absl::OkStatus();
}

absl::Status ReadAddedTokenArray(const json& array, const std::string& path, TokenizerSpec* spec) {
  if (array.is_null()) return absl::OkStatus();
  if (!array.is_array())
    return absl::InvalidArgumentError(absl::StrCat(path, ": added_tokens is not an array"));
  for (const json& obj : array) {
    if (!obj.is_object() || !obj.contains("id")) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": added token without id: ", obj.dump()));
    }
    SPEECHLLM_ASSIGN_OR_RETURN(const int64_t id, ReadId(obj["id"], path, "added token"));
    SPEECHLLM_ASSIGN_OR_RETURN(AddedToken token, ReadAddedToken(obj, id, path));
    spec->added_tokens.push_back(std::move(token));
  }
  return absl::OkStatus();
}

absl::StatusOr<TokenizerSpec> ReadTokenizerJsonImpl(const std::string& path) {
  SPEECHLLM_ASSIGN_OR_RETURN(const json root, ParseJsonFile(path));
  TokenizerSpec spec;
  spec.source = path;
  SPEECHLLM_RETURN_IF_ERROR(ReadNormalizer(Member(root, "normalizer"), path, &spec.nfc));
  SPEECHLLM_RETURN_IF_ERROR(
      ReadPreTokenizer(Member(root, "pre_tokenizer"), path, &spec.split_pattern));
  const json& decoder = Member(root, "decoder");
  if (!decoder.is_null() && decoder.value("type", "") != "ByteLevel") {
    return Unsupported(path, absl::StrCat("decoder ", decoder.dump()));
  }
  SPEECHLLM_RETURN_IF_ERROR(ReadBpeModel(Member(root, "model"), path, &spec));
  SPEECHLLM_RETURN_IF_ERROR(ReadAddedTokenArray(Member(root, "added_tokens"), path, &spec));
  return spec;
}

absl::StatusOr<TokenizerSpec> ReadVocabAndMergesImpl(const std::string& vocab_path,
                                                     const std::string& merges_path,
                                                     const std::string& config_path) {
  TokenizerSpec spec;
  spec.source = absl::StrCat(vocab_path, " + ", merges_path);
  SPEECHLLM_ASSIGN_OR_RETURN(const json vocab, ParseJsonFile(vocab_path));
  spec.vocab.reserve(vocab.size());
  for (const auto& [token, id_json] : vocab.items()) {
    SPEECHLLM_ASSIGN_OR_RETURN(const int64_t id,
                               ReadId(id_json, vocab_path, absl::StrCat("token \"", token, "\"")));
    spec.vocab.emplace_back(token, id);
  }
  SPEECHLLM_ASSIGN_OR_RETURN(const std::string merges_text, ReadFile(merges_path));
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(merges_text, '\n')) {
    ++line_number;
    if (absl::EndsWith(line, "\r")) line.remove_suffix(1);
    if (line.empty() || (line_number == 1 && absl::StartsWith(line, "#version"))) continue;
    const std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
      return absl::InvalidArgumentError(absl::StrCat(merges_path, " line ", line_number,
                                                     ": expected \"a b\", got \"", line, "\""));
    }
    spec.merges.emplace_back(std::string(parts[0]), std::string(parts[1]));
  }
  if (config_path.empty()) return spec;
  spec.source = absl::StrCat(spec.source, " + ", config_path);
  SPEECHLLM_ASSIGN_OR_RETURN(const json config, ParseJsonFile(config_path));
  if (config.contains("added_tokens_decoder")) {
    const json& table = config["added_tokens_decoder"];
    if (!table.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(config_path, ": added_tokens_decoder is not an object"));
    }
    for (const auto& [key, obj] : table.items()) {
      int64_t id = -1;
      if (!absl::SimpleAtoi(key, &id) || id < 0 || id > kMaxTokenId) {
        return absl::InvalidArgumentError(absl::StrCat(config_path, ": added_tokens_decoder key \"",
                                                       key, "\" is not a token id"));
      }
      SPEECHLLM_ASSIGN_OR_RETURN(AddedToken token, ReadAddedToken(obj, id, config_path));
      spec.added_tokens.push_back(std::move(token));
    }
    return spec;
  }
  const std::string added_path =
      (fs::path(vocab_path).parent_path() / "added_tokens.json").string();
  if (!fs::exists(added_path)) return spec;
  SPEECHLLM_ASSIGN_OR_RETURN(const json added, ParseJsonFile(added_path));
  for (const auto& [content, id_json] : added.items()) {
    SPEECHLLM_ASSIGN_OR_RETURN(
        const int64_t id, ReadId(id_json, added_path, absl::StrCat("token \"", content, "\"")));
    spec.added_tokens.push_back(AddedToken{static_cast<int32_t>(id), content, /*special=*/true});
  }
  return spec;
}

}  // namespace

// The public readers turn any nlohmann exception (a field of an unexpected type deep inside a file)
// into a status instead of letting it cross the API.
absl::StatusOr<TokenizerSpec> ReadTokenizerJson(const std::string& path) {
  try {
    return ReadTokenizerJsonImpl(path);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": unexpected content (", e.what(), ")"));
  }
}

absl::StatusOr<TokenizerSpec> ReadVocabAndMerges(const std::string& vocab_path,
                                                 const std::string& merges_path,
                                                 const std::string& config_path) {
  try {
    return ReadVocabAndMergesImpl(vocab_path, merges_path, config_path);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(vocab_path, " / ", config_path, ": unexpected content (", e.what(), ")"));
  }
}

absl::StatusOr<TokenizerSpec> ReadTokenizerDirectory(const std::string& dir) {
  const fs::path base(dir);
  std::error_code error;
  if (fs::exists(base / "tokenizer.json", error))
    return ReadTokenizerJson((base / "tokenizer.json").string());
  if (fs::exists(base / "vocab.json", error) || fs::exists(base / "merges.txt", error)) {
    const fs::path config = base / "tokenizer_config.json";
    return ReadVocabAndMerges((base / "vocab.json").string(), (base / "merges.txt").string(),
                              fs::exists(config, error) ? config.string() : "");
  }
  return absl::NotFoundError(
      absl::StrCat(dir, " has no tokenizer files (tokenizer.json, or vocab.json + merges.txt)"));
}

}  // namespace speechllm::engine::tokenizer
