#include "engine/model/tokenizer/bpe.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engine/model/tokenizer/scratch.h"

namespace speechllm::engine::tokenizer {
namespace {

struct Symbol {
  int32_t id;    // -1 once merged into its left neighbour
  int32_t prev;  // index of the previous live symbol, -1 at the start
  int32_t next;  // index of the next live symbol, -1 at the end
};

// A merge that was possible when it was queued; re-checked when popped because earlier merges may
// have consumed one of its two symbols.
struct Candidate {
  int32_t rank;
  int32_t pos;  // index of the left symbol (its first byte), for leftmost-first ties
  int32_t left_id;
  int32_t right_id;
  int32_t result;
};

// std heap functions build a max-heap; "less" here means "popped later": higher rank, then further
// right.
bool PoppedLater(const Candidate& a, const Candidate& b) {
  return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BpeModel>> BpeModel::Create(const std::array<int32_t, 256>& byte_ids,
                                                           const std::vector<MergeRule>& merges,
                                                           size_t cache_capacity_words) {
  std::unique_ptr<BpeModel> model(new BpeModel());
  model->byte_ids_ = byte_ids;
  model->cache_capacity_words_ = cache_capacity_words;
  model->merge_by_pair_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const MergeRule& m = merges[rank];
    const auto [it, inserted] = model->merge_by_pair_.emplace(
        PairKey(m.left, m.right), MergeInfo{static_cast<int32_t>(rank), m.result});
    if (!inserted) {
      return absl::InvalidArgumentError(
          absl::StrCat("merge rank ", rank, " repeats the pair of rank ", it->second.rank));
    }
  }
  return model;
}

const BpeModel::MergeInfo* BpeModel::FindMerge(int32_t left, int32_t right) const {
  const auto it = merge_by_pair_.find(PairKey(left, right));
  return it == merge_by_pair_.end() ? nullptr : &it->second;
}

void BpeModel::Merge(absl::string_view word, Ids* ids) const {
  // Scratch reused across calls on this thread: no allocation once it has grown (up to
  // kMaxKeptScratchBytes each; a longer word's is freed at the end).
  thread_local std::vector<Symbol> symbols;
  thread_local std::vector<Candidate> heap;
  const int32_t n = static_cast<int32_t>(word.size());
  symbols.resize(n);
  for (int32_t i = 0; i < n; ++i) {
    symbols[i] = Symbol{byte_ids_[static_cast<uint8_t>(word[i])], i - 1, i + 1 < n ? i + 1 : -1};
  }
  heap.clear();
  auto queue = [&](int32_t pos) {
    const int32_t next = symbols[pos].next;
    if (next < 0) return;
    const MergeInfo* m = FindMerge(symbols[pos].id, symbols[next].id);
    if (m == nullptr) return;
    heap.push_back(Candidate{m->rank, pos, symbols[pos].id, symbols[next].id, m->result});
    std::push_heap(heap.begin(), heap.end(), PoppedLater);
  };
  for (int32_t i = 0; i + 1 < n; ++i) queue(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), PoppedLater);
    const Candidate c = heap.back();
    heap.pop_back();
    Symbol& left = symbols[c.pos];
    if (left.id != c.left_id || left.next < 0) continue;  // left symbol changed or was merged away
    Symbol& right = symbols[left.next];
    if (right.id != c.right_id) continue;  // right neighbour changed
    left.id = c.result;
    left.next = right.next;
    if (right.next >= 0) symbols[right.next].prev = c.pos;
    right.id = -1;
    if (left.prev >= 0) queue(left.prev);
    queue(c.pos);
  }
  for (int32_t i = 0; i >= 0; i = symbols[i].next) ids->push_back(symbols[i].id);
  ReleaseIfLarge(symbols);
  ReleaseIfLarge(heap);
}

void BpeModel::EncodeWord(absl::string_view word, std::vector<int32_t>* ids) const {
  if (word.empty()) return;
  if (word.size() == 1) {
    ids->push_back(byte_ids_[static_cast<uint8_t>(word[0])]);
    return;
  }
  const bool cacheable = cache_capacity_words_ > 0 && word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    absl::ReaderMutexLock lock(&cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      ids->insert(ids->end(), it->second.begin(), it->second.end());
      return;
    }
  }
  Ids merged;
  Merge(word, &merged);
  ids->insert(ids->end(), merged.begin(), merged.end());
  if (cacheable) {
    absl::MutexLock lock(&cache_mutex_);
    if (cache_.size() < cache_capacity_words_) cache_.emplace(std::string(word), std::move(merged));
  }
}

size_t BpeModel::cached_words() const {
  absl::ReaderMutexLock lock(&cache_mutex_);
  return cache_.size();
}

void BpeModel::ClearCache() const {
  absl::MutexLock lock(&cache_mutex_);
  cache_.clear();
}

}  // namespace speechllm::engine::tokenizer
