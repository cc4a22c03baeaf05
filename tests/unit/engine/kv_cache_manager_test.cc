#include "engine/kv_cache_manager.h"

#include "engine/prefix_registry.h"

#include "gtest/gtest.h"

namespace speechllm::engine {
namespace {

TEST(KvCacheManagerTest, ReserveTruncateFreeAndCapacity) {
  KvCacheManager kv(4, 16);
  EXPECT_EQ(kv.NumFreeBlocks(), 4);
  ASSERT_TRUE(kv.Reserve(1, 17).ok());  // two blocks
  EXPECT_EQ(kv.BlockTable(1).size(), 2u);
  EXPECT_EQ(kv.NumFreeBlocks(), 2);
  ASSERT_TRUE(kv.Reserve(1, 20).ok());  // still two
  EXPECT_EQ(kv.NumFreeBlocks(), 2);
  EXPECT_EQ(kv.Reserve(2, 3 * 16).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(kv.NumFreeBlocks(), 2) << "a refused reservation allocates nothing";
  kv.Truncate(1, 16);
  EXPECT_EQ(kv.BlockTable(1).size(), 1u);
  EXPECT_EQ(kv.NumFreeBlocks(), 3);
  ASSERT_TRUE(kv.Reserve(2, 3 * 16).ok());
  EXPECT_EQ(kv.NumFreeBlocks(), 0);
  kv.Free(1);
  kv.Free(2);
  kv.Free(3);  // unknown: no-op
  EXPECT_EQ(kv.NumFreeBlocks(), 4);
  EXPECT_TRUE(kv.BlockTable(1).empty());
}

TEST(KvCacheManagerTest, BlocksAreNeverSharedBetweenSequences) {
  KvCacheManager kv(8, 4);
  ASSERT_TRUE(kv.Reserve(1, 12).ok());
  ASSERT_TRUE(kv.Reserve(2, 12).ok());
  for (int64_t a : kv.BlockTable(1)) {
    for (int64_t b : kv.BlockTable(2)) EXPECT_NE(a, b);
  }
}

}  // namespace
}  // namespace speechllm::engine

namespace speechllm::engine {
namespace {

TEST(KvCacheManagerTest, ForkSharesBlocksAndCopyOnWriteSeparatesThem) {
  KvCacheManager kv(8, 4);
  ASSERT_TRUE(kv.Reserve(1, 10).ok());  // 3 blocks
  const std::vector<int64_t> shared(kv.BlockTable(1).begin(), kv.BlockTable(1).begin() + 2);
  kv.Fork(2, shared);
  EXPECT_EQ(kv.BlockTable(2), shared);
  EXPECT_EQ(kv.RefCount(shared[0]), 2);
  EXPECT_EQ(kv.NumFreeBlocks(), 5);
  // Sequence 2 writes position 5 (inside the second shared block): only that block is copied.
  std::vector<std::pair<int64_t, int64_t>> copies;
  ASSERT_TRUE(kv.MakeWritable(2, 5, 8, &copies).ok());
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0].first, shared[1]);
  EXPECT_NE(kv.BlockTable(2)[1], shared[1]);
  EXPECT_EQ(kv.BlockTable(2)[0], shared[0]);
  EXPECT_EQ(kv.RefCount(shared[1]), 1);
  // Writing private blocks copies nothing.
  copies.clear();
  ASSERT_TRUE(kv.MakeWritable(1, 8, 10, &copies).ok());
  EXPECT_TRUE(copies.empty());
  // Shared blocks return to the pool only with their last reference.
  kv.Free(1);
  EXPECT_EQ(kv.RefCount(shared[0]), 1);
  kv.Free(2);
  EXPECT_EQ(kv.NumFreeBlocks(), 8);
}

// Fork with a table that the manager itself holds, even the sequence's own: no reference dangles
// (found by AddressSanitizer) and no block is released while it stays in the new table.
TEST(KvCacheManagerTest, ForkOntoTablesTheManagerHolds) {
  KvCacheManager kv(6, 4);
  ASSERT_TRUE(kv.Reserve(1, 8).ok());  // 2 blocks
  const std::vector<int64_t> table = kv.BlockTable(1);
  kv.Fork(1, kv.BlockTable(1));
  EXPECT_EQ(kv.BlockTable(1), table);
  EXPECT_EQ(kv.RefCount(table[0]), 1);
  EXPECT_EQ(kv.NumFreeBlocks(), 4);
  for (SequenceId id = 2; id < 10; ++id) kv.Fork(id, kv.BlockTable(1));  // tables_ grows
  EXPECT_EQ(kv.BlockTable(9), table);
  EXPECT_EQ(kv.RefCount(table[1]), 9);
  ASSERT_TRUE(kv.Reserve(10, 16).ok());  // the other 4 blocks, none of sequence 1's
  for (int64_t block : kv.BlockTable(10)) EXPECT_EQ(kv.RefCount(block), 1);
  EXPECT_EQ(kv.NumFreeBlocks(), 0);
}

TEST(KvCacheManagerTest, CopyOnWriteFailsCleanlyWhenFull) {
  KvCacheManager kv(2, 4);
  ASSERT_TRUE(kv.Reserve(1, 4).ok());
  kv.Fork(2, kv.BlockTable(1));
  ASSERT_TRUE(kv.Reserve(3, 4).ok());  // the last free block
  std::vector<std::pair<int64_t, int64_t>> copies;
  EXPECT_EQ(kv.MakeWritable(2, 0, 4, &copies).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(copies.empty());
  EXPECT_EQ(kv.BlockTable(2), kv.BlockTable(1));
}

TEST(PrefixRegistryTest, SharesWholeBlocksAndReleasesUnusedEntries) {
  KvCacheManager kv(16, 4);
  PrefixRegistry registry(&kv, 2);
  const std::vector<int64_t> prefix = {1, 2, 3, 4, 5,
                                       6, 7, 8, 9, 10};  // two whole blocks + 2 tokens
  EXPECT_EQ(registry.Lookup(prefix).tokens, 0);
  ASSERT_TRUE(kv.Reserve(1, 10).ok());
  registry.Insert(prefix, kv.BlockTable(1));
  const PrefixRegistry::Match match = registry.Lookup(prefix);
  EXPECT_EQ(match.tokens, 8);
  ASSERT_EQ(match.blocks.size(), 2u);
  EXPECT_EQ(match.blocks[0], kv.BlockTable(1)[0]);
  // Another prefix with the same two whole blocks matches; a different one does not.
  EXPECT_EQ(registry.Lookup({1, 2, 3, 4, 5, 6, 7, 8, 99}).tokens, 8);
  EXPECT_EQ(registry.Lookup({1, 2, 3, 4, 5, 6, 7, 0, 9}).tokens, 0);
  // Short prefixes (no whole block) are never registered.
  registry.Insert({1, 2, 3}, kv.BlockTable(1));
  EXPECT_EQ(registry.num_entries(), 1);
  // While sequence 1 holds the blocks the entry stays; once it is gone the entry goes too.
  registry.EvictUnused();
  EXPECT_EQ(registry.num_entries(), 1);
  kv.Free(1);
  registry.EvictUnused();
  EXPECT_EQ(registry.num_entries(), 0);
  EXPECT_EQ(kv.NumFreeBlocks(), 16);
}

}  // namespace
}  // namespace speechllm::engine
