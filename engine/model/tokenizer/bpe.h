// Byte-level BPE model: turns the bytes of one pre-tokenized piece into token ids by applying the
// merge rules in rank order (lowest rank first, leftmost first on ties, as HF tokenizers' BPE
// does). Owned by the Tokenizer; EncodeWord() is const and thread-safe (the word cache has its own
// mutex).
#ifndef SPEECHLLM_ENGINE_MODEL_TOKENIZER_BPE_H_
#define SPEECHLLM_ENGINE_MODEL_TOKENIZER_BPE_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace speechllm::engine::tokenizer {

// One merge rule: the adjacent tokens `left` `right` become `result`. Its rank is its index in the
// list given to BpeModel::Create.
struct MergeRule {
  int32_t left = 0;
  int32_t right = 0;
  int32_t result = 0;
};

class BpeModel {
 public:
  // Words up to this many bytes are cached by default; the cache holds at most
  // `cache_capacity_words`.
  static constexpr size_t kMaxCachedWordBytes = 128;
  static constexpr size_t kDefaultCacheCapacityWords = 1 << 16;

  // `byte_ids[b]` is the id of the single-byte token of byte b. INVALID_ARGUMENT if two rules merge
  // the same pair (names both ranks); ids are otherwise taken as validated by the caller.
  static absl::StatusOr<std::unique_ptr<BpeModel>> Create(
      const std::array<int32_t, 256>& byte_ids, const std::vector<MergeRule>& merges,
      size_t cache_capacity_words = kDefaultCacheCapacityWords);

  // Appends the ids of `word` (raw bytes of one piece, non-empty) to `ids`.
  void EncodeWord(absl::string_view word, std::vector<int32_t>* ids) const;

  size_t num_merges() const { return merge_by_pair_.size(); }
  size_t cached_words() const;
  void ClearCache() const;

 private:
  struct MergeInfo {
    int32_t rank;
    int32_t result;
  };
  using Ids = absl::InlinedVector<int32_t, 6>;

  BpeModel() = default;
  static uint64_t PairKey(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }
  const MergeInfo* FindMerge(int32_t left, int32_t right) const;
  // The merge loop without the cache.
  void Merge(absl::string_view word, Ids* ids) const;

  std::array<int32_t, 256> byte_ids_{};
  absl::flat_hash_map<uint64_t, MergeInfo> merge_by_pair_;
  size_t cache_capacity_words_ = 0;
  mutable absl::Mutex cache_mutex_;
  mutable absl::flat_hash_map<std::string, Ids> cache_ ABSL_GUARDED_BY(cache_mutex_);
};

}  // namespace speechllm::engine::tokenizer

#endif  // SPEECHLLM_ENGINE_MODEL_TOKENIZER_BPE_H_
