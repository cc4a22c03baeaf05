#include "engine/model/tokenizer/incremental_detokenizer.h"

#include "absl/strings/str_cat.h"
#include "engine/model/tokenizer/utf8.h"

namespace speechllm::engine::tokenizer {

absl::StatusOr<std::string> IncrementalDetokenizer::Append(int32_t id) {
  return Append(absl::MakeConstSpan(&id, 1));
}

absl::StatusOr<std::string> IncrementalDetokenizer::Append(absl::Span<const int32_t> ids) {
  for (const int32_t id : ids) {  // check all first so that an error leaves the state unchanged
    if (!tokenizer_->IsKnown(id) && !options_.skip_unknown_ids) {
      return absl::OutOfRangeError(
          absl::StrCat("token id ", id, " is not in the vocabulary of ", tokenizer_->source()));
    }
  }
  for (const int32_t id : ids) {
    ++num_ids_;
    if (!tokenizer_->IsKnown(id)) continue;  // skip_unknown_ids, as Decode does
    if (options_.skip_special_tokens && tokenizer_->IsSpecial(id)) continue;
    if (options_.skip_tag_tokens && tokenizer_->IsTag(id)) continue;
    const absl::string_view bytes = *tokenizer_->TokenBytes(id);  // known: checked above
    pending_.append(bytes.data(), bytes.size());
  }
  std::string delta;
  const size_t consumed = AppendUtf8Lossy(pending_, /*final=*/false, &delta);
  pending_.erase(0, consumed);
  return delta;
}

std::string IncrementalDetokenizer::Finish() {
  std::string delta;
  AppendUtf8Lossy(pending_, /*final=*/true, &delta);
  pending_.clear();
  return delta;
}

}  // namespace speechllm::engine::tokenizer
