#include "engine/kv_cache_manager.h"

#include "absl/strings/str_cat.h"

namespace speechllm::engine {

KvCacheManager::KvCacheManager(int64_t num_blocks, int64_t block_size)
    : num_blocks_(num_blocks), block_size_(block_size) {
  free_blocks_.reserve(num_blocks);
  for (int64_t b = num_blocks - 1; b >= 0; --b) free_blocks_.push_back(b);
}

absl::Status KvCacheManager::Reserve(SequenceId id, int64_t num_tokens) {
  std::vector<int64_t>& table = tables_[id];
  const int64_t needed = BlocksFor(num_tokens) - static_cast<int64_t>(table.size());
  if (needed <= 0) return absl::OkStatus();
  if (needed > NumFreeBlocks()) {
    return absl::ResourceExhaustedError(absl::StrCat("KV cache full: ", needed, " blocks needed, ",
                                                     NumFreeBlocks(), " free of ", num_blocks_));
  }
  for (int64_t i = 0; i < needed; ++i) {
    table.push_back(free_blocks_.back());
    free_blocks_.pop_back();
  }
  return absl::OkStatus();
}

void KvCacheManager::Truncate(SequenceId id, int64_t num_tokens) {
  auto it = tables_.find(id);
  if (it == tables_.end()) return;
  std::vector<int64_t>& table = it->second;
  const size_t keep = static_cast<size_t>(BlocksFor(num_tokens));
  while (table.size() > keep) {
    free_blocks_.push_back(table.back());
    table.pop_back();
  }
}

void KvCacheManager::Free(SequenceId id) {
  Truncate(id, 0);
  tables_.erase(id);
}

const std::vector<int64_t>& KvCacheManager::BlockTable(SequenceId id) const {
  static const std::vector<int64_t> kEmpty;
  auto it = tables_.find(id);
  return it == tables_.end() ? kEmpty : it->second;
}

}  // namespace speechllm::engine
