#include "engine/kv_cache_manager.h"

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
