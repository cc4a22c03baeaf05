#include "engine/kv_cache_manager.h"

#include "absl/strings/str_cat.h"

namespace speechllm::engine {

KvCacheManager::KvCacheManager(int64_t num_blocks, int64_t block_size)
    : num_blocks_(num_blocks),
      block_size_(block_size),
      ref_counts_(static_cast<size_t>(num_blocks), 0) {
  free_blocks_.reserve(num_blocks);
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_blocks_.push_back(b);
}

int64_t KvCacheManager::Allocate() {
  const int64_t block = free_blocks_.back();
  free_blocks_.pop_back();
  ref_counts_[block] = 1;
  return block;
}

void KvCacheManager::AddRef(int64_t block) { ++ref_counts_[block]; }

void KvCacheManager::Release(int64_t block) {
  if (--ref_counts_[block] == 0) free_blocks_.push_back(block);
}

absl::Status KvCacheManager::Reserve(SequenceId id, int64_t num_tokens) {
  std::vector<int64_t>& table = tables_[id];
  const int64_t needed = BlocksFor(num_tokens) - static_cast<int64_t>(table.size());
  if (needed <= 0) return absl::OkStatus();
  if (needed > NumFreeBlocks()) {
    return absl::ResourceExhaustedError(absl::StrCat("KV cache full: ", needed, " blocks needed, ",
                                                     NumFreeBlocks(), " free of ", num_blocks_));
  }
  for (int64_t i = 0; i < needed; ++i) table.push_back(Allocate());
  return absl::OkStatus();
}

void KvCacheManager::Truncate(SequenceId id, int64_t num_tokens) {
  auto it = tables_.find(id);
  if (it == tables_.end()) return;
  std::vector<int64_t>& table = it->second;
  const size_t keep = static_cast<size_t>(BlocksFor(num_tokens));
  while (table.size() > keep) {
    Release(table.back());
    table.pop_back();
  }
}

void KvCacheManager::Free(SequenceId id) {
  Truncate(id, 0);
  tables_.erase(id);
}

void KvCacheManager::Fork(SequenceId id, std::vector<int64_t> blocks) {
  // `blocks` is a copy: a caller's reference into tables_ (another sequence's BlockTable) would
  // dangle once tables_ grows. Its blocks are referenced before `id`'s own are released, so a
  // block in both stays allocated.
  for (int64_t block : blocks) AddRef(block);
  Free(id);
  tables_[id] = std::move(blocks);
}

absl::Status KvCacheManager::MakeWritable(SequenceId id, int64_t first_position,
                                          int64_t end_position,
                                          std::vector<std::pair<int64_t, int64_t>>* copies) {
  auto it = tables_.find(id);
  if (it == tables_.end() || end_position <= first_position) return absl::OkStatus();
  std::vector<int64_t>& table = it->second;
  const int64_t last =
      std::min<int64_t>(BlocksFor(end_position), static_cast<int64_t>(table.size()));
  int64_t shared = 0;
  for (int64_t b = first_position / block_size_; b < last; ++b) shared += ref_counts_[table[b]] > 1;
  if (shared > NumFreeBlocks()) {
    return absl::ResourceExhaustedError("KV cache full: no block for copy-on-write");
  }
  for (int64_t b = first_position / block_size_; b < last; ++b) {
    if (ref_counts_[table[b]] <= 1) continue;
    const int64_t copy = Allocate();
    copies->emplace_back(table[b], copy);
    Release(table[b]);
    table[b] = copy;
  }
  return absl::OkStatus();
}

const std::vector<int64_t>& KvCacheManager::BlockTable(SequenceId id) const {
  static const std::vector<int64_t> kEmpty;
  auto it = tables_.find(id);
  return it == tables_.end() ? kEmpty : it->second;
}

}  // namespace speechllm::engine
