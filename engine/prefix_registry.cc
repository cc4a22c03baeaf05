#include "engine/prefix_registry.h"

namespace speechllm::engine {

std::vector<int64_t> PrefixRegistry::Key(const std::vector<int64_t>& prefix_ids) const {
  const size_t whole =
      prefix_ids.size() / static_cast<size_t>(kv_->block_size()) * kv_->block_size();
  return std::vector<int64_t>(prefix_ids.begin(), prefix_ids.begin() + whole);
}

PrefixRegistry::Match PrefixRegistry::Lookup(const std::vector<int64_t>& prefix_ids) {
  Match match;
  const std::vector<int64_t> key = Key(prefix_ids);
  if (key.empty()) return match;
  auto it = entries_.find(key);
  if (it == entries_.end()) return match;
  it->second.last_use = ++clock_;
  ++hits_;
  match.blocks = it->second.blocks;
  match.tokens = static_cast<int64_t>(key.size());
  return match;
}

void PrefixRegistry::Insert(const std::vector<int64_t>& prefix_ids,
                            const std::vector<int64_t>& table) {
  std::vector<int64_t> key = Key(prefix_ids);
  if (key.empty() || max_entries_ <= 0 || entries_.count(key) != 0) return;
  const size_t blocks = key.size() / static_cast<size_t>(kv_->block_size());
  if (table.size() < blocks) return;
  if (static_cast<int>(entries_.size()) >= max_entries_) {
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.last_use < oldest->second.last_use) oldest = it;
    }
    for (int64_t block : oldest->second.blocks) kv_->Release(block);
    entries_.erase(oldest);
  }
  Entry entry;
  entry.blocks.assign(table.begin(), table.begin() + blocks);
  entry.last_use = ++clock_;
  for (int64_t block : entry.blocks) kv_->AddRef(block);
  entries_.emplace(std::move(key), std::move(entry));
}

void PrefixRegistry::Clear() {
  for (auto& [key, entry] : entries_) {
    for (int64_t block : entry.blocks) kv_->Release(block);
  }
  entries_.clear();
}

void PrefixRegistry::EvictUnused() {
  for (auto it = entries_.begin(); it != entries_.end();) {
    // Sequences fork whole entries, so the first block's count tells whether any still uses it.
    if (!it->second.blocks.empty() && kv_->RefCount(it->second.blocks.front()) <= 1) {
      for (int64_t block : it->second.blocks) kv_->Release(block);
      it = entries_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace speechllm::engine
