// PrefixRegistry: prompt prefixes whose keys/values are already computed, so that sequences
// starting a segment with the same prefix share those KV blocks instead of prefilling them again.
// Owned by the Scheduler; engine loop thread only.
#ifndef SPEECHLLM_ENGINE_PREFIX_REGISTRY_H_
#define SPEECHLLM_ENGINE_PREFIX_REGISTRY_H_

#include <cstdint>
#include <map>
#include <vector>

#include "engine/kv_cache_manager.h"

namespace speechllm::engine {

// Only whole blocks are shared (the part of a prefix in its last, partly filled block stays
// private), each entry holds a reference on its blocks, and entries are evicted when no sequence
// uses them any more, least recently used first at the entry limit, or all at once when the KV
// cache runs short.
class PrefixRegistry {
 public:
  PrefixRegistry(KvCacheManager* kv, int max_entries) : kv_(kv), max_entries_(max_entries) {}
  ~PrefixRegistry() { Clear(); }

  struct Match {
    std::vector<int64_t> blocks;  // shared blocks holding prefix_ids[0, tokens)
    int64_t tokens = 0;           // a multiple of the block size
  };
  // The cached whole blocks of `prefix_ids` (empty when none).
  Match Lookup(const std::vector<int64_t>& prefix_ids);
  // A sequence whose block table is `table` has computed `prefix_ids`: its whole prefix blocks
  // become shared (no-op when the prefix has no whole block or is already registered).
  void Insert(const std::vector<int64_t>& prefix_ids, const std::vector<int64_t>& table);
  // Drops every entry (its blocks return to the pool once no sequence uses them).
  void Clear();
  // Drops the entries no sequence uses any more, so that an idle engine holds no blocks.
  void EvictUnused();

  int64_t num_entries() const { return static_cast<int64_t>(entries_.size()); }
  int64_t hits() const { return hits_; }

 private:
  struct Entry {
    std::vector<int64_t> blocks;
    int64_t last_use = 0;
  };
  std::vector<int64_t> Key(const std::vector<int64_t>& prefix_ids) const;

  KvCacheManager* kv_;
  int max_entries_;
  std::map<std::vector<int64_t>, Entry> entries_;
  int64_t clock_ = 0;
  int64_t hits_ = 0;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_PREFIX_REGISTRY_H_
