// KvCacheManager: bookkeeping of the decoder's KV blocks (block_size tokens each): a free list,
// reference counts, and per sequence a block table sized to the tokens it holds. Blocks can be
// shared (Fork, the PrefixRegistry's cached prompt prefixes); a shared block is never written:
// MakeWritable replaces it by a private copy and records the copy for the ModelRunner to perform.
// No tensors: the runner's KvPool holds the data. Owned and used by the engine loop thread only.
#ifndef SPEECHLLM_ENGINE_KV_CACHE_MANAGER_H_
#define SPEECHLLM_ENGINE_KV_CACHE_MANAGER_H_

#include <cstdint>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "engine/types.h"

namespace speechllm::engine {

class KvCacheManager {
 public:
  KvCacheManager(int64_t num_blocks, int64_t block_size);

  int64_t block_size() const { return block_size_; }
  int64_t num_blocks() const { return num_blocks_; }
  int64_t NumFreeBlocks() const { return static_cast<int64_t>(free_blocks_.size()); }
  int64_t BlocksFor(int64_t num_tokens) const {
    return (num_tokens + block_size_ - 1) / block_size_;
  }

  // Grows `id`'s block table to hold `num_tokens` tokens (never shrinks). RESOURCE_EXHAUSTED when
  // the free blocks do not suffice (nothing is allocated then).
  absl::Status Reserve(SequenceId id, int64_t num_tokens);
  // Shrinks `id`'s table to the blocks that `num_tokens` tokens need; a block whose last reference
  // goes returns to the pool.
  void Truncate(SequenceId id, int64_t num_tokens);
  // Drops every block reference of `id`.
  void Free(SequenceId id);
  // `id` starts with `blocks` as its table, sharing them; its previous blocks are released.
  void Fork(SequenceId id, std::vector<int64_t> blocks);
  // Ensures the blocks holding positions [first_position, end_position) of `id` are its own: each
  // shared one is replaced by a fresh block and (old, new) appended to `copies`. RESOURCE_EXHAUSTED
  // when no block is free (the table is unchanged then).
  absl::Status MakeWritable(SequenceId id, int64_t first_position, int64_t end_position,
                            std::vector<std::pair<int64_t, int64_t>>* copies);

  // References held outside sequence tables (the prefix registry).
  void AddRef(int64_t block);
  void Release(int64_t block);
  int64_t RefCount(int64_t block) const { return ref_counts_[block]; }

  // The block table of `id` (empty if it holds none).
  const std::vector<int64_t>& BlockTable(SequenceId id) const;

 private:
  int64_t Allocate();

  int64_t num_blocks_, block_size_;
  std::vector<int64_t> free_blocks_;  // a stack: recently freed blocks are reused first
  std::vector<int32_t> ref_counts_;
  absl::flat_hash_map<SequenceId, std::vector<int64_t>> tables_;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_KV_CACHE_MANAGER_H_
