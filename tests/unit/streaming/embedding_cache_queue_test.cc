// The embedding cache's work queue: lookups (an exact final waits on each) go before queued
// stores; a lookup queued past its deadline
// answers a miss without reading, with its key so that the rows are still stored; stores beyond
// the byte bound are dropped.
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "streaming/embedding_cache.h"
#include "streaming/embedding_cache_entry.h"
#include "tests/unit/streaming/embedding_cache_test_util.h"

namespace speechllm::streaming {
namespace {

constexpr int kRowWidth = 4;
constexpr int kRowsPerStore = 65536;  // 1 MiB of float32 a store

EmbeddingCacheConfig QueueConfig(const std::string& name, int threads) {
  EmbeddingCacheConfig config;
  config.dir = FreshDir(name);
  config.model_id = "model";
  config.hidden_size = kRowWidth;
  config.threads = threads;
  return config;
}

std::string StoreKey(int i) { return Sha256Hex("store " + std::to_string(i)); }

// One worker, held in a lookup's answer while ten stores and then a lookup queue up: the lookup
// is answered before any store is written.
TEST(EmbeddingCacheQueueTest, ALookupDoesNotWaitBehindQueuedStores) {
  constexpr int kStores = 10;
  EmbeddingCacheConfig config = QueueConfig("behind_stores", 1);
  CountingObserver observer;
  auto cache = EmbeddingCache::Open(config, &observer);
  ASSERT_TRUE(cache.ok()) << cache.status();
  absl::Notification release;
  ASSERT_TRUE(HoldAWorker(**cache, &release));
  const std::vector<float> rows = Features(1, kRowsPerStore * kRowWidth);
  for (int i = 0; i < kStores; ++i) (*cache)->Store(StoreKey(i), rows, kRowsPerStore);
  absl::Notification answered;
  int64_t stored_when_answered = -1;
  (*cache)->Lookup(Features(2, 8), 4, 3, [&](EmbeddingCache::Answer answer) {
    stored_when_answered = (*cache)->disk().num_entries();
    EXPECT_EQ(answer.cached.num_rows, 0);
    answered.Notify();
  });
  release.Notify();
  ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE((*cache)->WaitIdle(absl::Seconds(60)));
  std::printf("lookup answered with %lld of %d queued 1 MiB stores written\n",
              static_cast<long long>(stored_when_answered), kStores);
  EXPECT_EQ(stored_when_answered, 0) << "the lookup waited for the stores queued before it";
  EXPECT_EQ((*cache)->disk().num_entries(), kStores);
  EXPECT_EQ(observer.Count(CacheResult::kMiss), 2);
}

TEST(EmbeddingCacheQueueTest, ALateLookupIsAMissWithItsKey) {
  EmbeddingCacheConfig config = QueueConfig("late", 1);
  config.lookup_deadline = absl::Milliseconds(50);
  CountingObserver observer;
  auto cache = EmbeddingCache::Open(config, &observer);
  ASSERT_TRUE(cache.ok()) << cache.status();
  const std::vector<float> stored = Features(5, 8);
  const std::string key = EmbeddingCacheKey("model", stored, 4, 3);
  (*cache)->Store(key, Features(9, 2 * kRowWidth), 2);
  ASSERT_TRUE((*cache)->WaitIdle(absl::Seconds(10)));
  ASSERT_EQ(LookupAndWait(**cache, stored).cached.num_rows, 2);  // in time: a hit
  // The one worker is held in a lookup's answer for longer than the deadline.
  absl::Notification release;
  ASSERT_TRUE(HoldAWorker(**cache, &release));
  absl::Notification answered;
  EmbeddingCache::Answer late;
  (*cache)->Lookup(stored, 4, 3, [&](EmbeddingCache::Answer answer) {
    late = std::move(answer);
    answered.Notify();
  });
  absl::SleepFor(absl::Milliseconds(120));
  release.Notify();
  ASSERT_TRUE(answered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(late.cached.num_rows, 0) << "answered without reading the entry it has";
  EXPECT_EQ(late.key, key);
  EXPECT_EQ(observer.Count(CacheResult::kHit), 1);
  EXPECT_EQ(observer.Count(CacheResult::kError), 1);
}

TEST(EmbeddingCacheQueueTest, StoresBeyondTheByteBoundAreDropped) {
  EmbeddingCacheConfig config = QueueConfig("bytes", 1);
  config.max_queued_store_bytes = (5 << 20) / 2;  // two 1 MiB stores, not three
  auto cache = EmbeddingCache::Open(config, nullptr);
  ASSERT_TRUE(cache.ok()) << cache.status();
  absl::Notification release;
  ASSERT_TRUE(HoldAWorker(**cache, &release));
  const std::vector<float> rows = Features(1, kRowsPerStore * kRowWidth);
  for (int i = 0; i < 3; ++i) (*cache)->Store(StoreKey(i), rows, kRowsPerStore);
  release.Notify();
  ASSERT_TRUE((*cache)->WaitIdle(absl::Seconds(30)));
  EXPECT_EQ((*cache)->disk().num_entries(), 2);
  // Written stores leave room for more.
  (*cache)->Store(StoreKey(3), rows, kRowsPerStore);
  ASSERT_TRUE((*cache)->WaitIdle(absl::Seconds(30)));
  EXPECT_EQ((*cache)->disk().num_entries(), 3);
}

}  // namespace
}  // namespace speechllm::streaming
