// KvCacheManager: bookkeeping of the decoder's KV blocks (block_size tokens each): a free list and,
// per sequence, a block table sized to the tokens it holds. No tensors: the ModelRunner's KvPool
// holds the data at the block ids handed out here. Owned and used by the engine loop thread only.
#ifndef SPEECHLLM_ENGINE_KV_CACHE_MANAGER_H_
#define SPEECHLLM_ENGINE_KV_CACHE_MANAGER_H_

#include <cstdint>
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
  // Shrinks `id`'s table to the blocks that `num_tokens` tokens need; freed blocks return to the
  // pool.
  void Truncate(SequenceId id, int64_t num_tokens);
  // Frees every block of `id`.
  void Free(SequenceId id);
  // The block table of `id` (empty if it holds none).
  const std::vector<int64_t>& BlockTable(SequenceId id) const;

 private:
  int64_t num_blocks_, block_size_;
  std::vector<int64_t> free_blocks_;  // a stack: recently freed blocks are reused first
  absl::flat_hash_map<SequenceId, std::vector<int64_t>> tables_;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_KV_CACHE_MANAGER_H_
