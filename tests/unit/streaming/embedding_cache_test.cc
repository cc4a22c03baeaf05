// The embedding cache's parts (ARCHITECTURE.md 8): CRC-32C, keys and entries, the disk store
// (write-then-rename, LRU eviction, reopening, corrupt files), the worker pool's lookups and
// stores, and the model fingerprint.
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "streaming/crc32c.h"
#include "streaming/disk_embedding_store.h"
#include "streaming/embedding_cache.h"
#include "streaming/embedding_cache_entry.h"
#include "tests/unit/streaming/embedding_cache_test_util.h"

namespace speechllm::streaming {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(Crc32cTest, KnownValues) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);  // RFC 3720 B.4's check value
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);  // RFC 3720 B.4: 32 zero bytes
}

// The instruction path (where the CPU has one) against the table, over lengths and alignments.
TEST(Crc32cTest, TheInstructionAndTheTableAgree) {
  std::string bytes(300, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 131 + 7) % 251);
  for (size_t offset : {0, 1, 3, 7}) {
    for (size_t length = 0; offset + length <= bytes.size(); length += 13) {
      const absl::string_view piece = absl::string_view(bytes).substr(offset, length);
      ASSERT_EQ(Crc32c(piece), Crc32cByTable(piece)) << offset << " + " << length;
    }
  }
  EXPECT_EQ(Crc32cByTable("123456789"), 0xE3069283u);
}

TEST(EmbeddingCacheEntryTest, KeysFollowTheModelAndEveryFeature) {
  const std::vector<float> features = Features(1, 256);
  const std::string key = EmbeddingCacheKey("model-a", features, 2, 1);
  EXPECT_EQ(key.size(), static_cast<size_t>(kCacheKeyHexChars));
  EXPECT_EQ(key, EmbeddingCacheKey("model-a", features, 2, 1));
  EXPECT_NE(key, EmbeddingCacheKey("model-b", features, 2, 1));
  EXPECT_NE(key, EmbeddingCacheKey("model-a", features, 2, 2));
  std::vector<float> changed = features;
  changed[200] = std::nextafter(changed[200], 1e9f);  // one ulp
  EXPECT_NE(key, EmbeddingCacheKey("model-a", changed, 2, 1));
  EXPECT_EQ(Sha256Hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");  // FIPS 180-2
  // Pieces hash as their concatenation: the key (fed in two pieces) is the SHA-256 of the
  // header and the features' bytes one after the other, as stored keys were made.
  Sha256 pieces;
  pieces.Update("a");
  pieces.Update("bc");
  EXPECT_EQ(pieces.Hex(), Sha256Hex("abc"));
  std::string whole = "speechllm-embeddings-v1\nmodel-a\n";
  for (const uint64_t count : {uint64_t{2}, uint64_t{1}}) {
    whole.append(reinterpret_cast<const char*>(&count), sizeof(count));
  }
  whole.append(reinterpret_cast<const char*>(features.data()), features.size() * sizeof(float));
  EXPECT_EQ(key, Sha256Hex(whole));
}

TEST(EmbeddingCacheEntryTest, EntriesRoundTripAndDamageIsDataLoss) {
  const std::string key = Sha256Hex("segment");
  const std::vector<float> rows = Features(-3, 3 * 8);
  const std::string entry = EncodeCacheEntry(key, rows, 3, 8);
  absl::StatusOr<CachedRows> decoded = DecodeCacheEntry(entry, key, 8);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_EQ(decoded->num_rows, 3);
  EXPECT_EQ(decoded->rows, rows);
  // Every byte matters: a flip anywhere is caught by the checksum.
  for (size_t at : {size_t{0}, size_t{20}, entry.size() / 2, entry.size() - 1}) {
    std::string damaged = entry;
    damaged[at] ^= 0x01;
    EXPECT_EQ(DecodeCacheEntry(damaged, key, 8).status().code(), absl::StatusCode::kDataLoss)
        << "byte " << at;
  }
  EXPECT_THAT(DecodeCacheEntry(entry.substr(0, 40), key, 8).status().message(),
              HasSubstr("too short"));
  EXPECT_THAT(DecodeCacheEntry(entry, Sha256Hex("other"), 8).status().message(),
              HasSubstr("another key"));
  EXPECT_THAT(DecodeCacheEntry(entry, key, 16).status().message(), HasSubstr("3 rows of 8"));
}

// Any damage, truncation or garbage is DATA_LOSS, never a crash or rows of the wrong size: 20,000
// random mutations of an entry (byte flips, truncations, extensions, rewritten sizes with a valid
// checksum) and random buffers.
TEST(EmbeddingCacheEntryTest, RandomDamageIsAlwaysDataLoss) {
  const std::string key = Sha256Hex("segment");
  const std::string entry = EncodeCacheEntry(key, Features(1, 5 * 8), 5, 8);
  std::mt19937 random(3);
  int refused = 0;
  for (int trial = 0; trial < 20000; ++trial) {
    std::string damaged = entry;
    switch (trial % 4) {
      case 0:
        damaged[random() % damaged.size()] ^= static_cast<char>(1 + random() % 255);
        break;
      case 1:
        damaged.resize(random() % damaged.size());
        break;
      case 2:
        damaged.append(std::string(1 + random() % 16, static_cast<char>(random())));
        break;
      case 3: {  // another row count or width, re-checksummed: only the sizes can refuse it
        const size_t at = 8 + 4 + 4 + kCacheKeyHexChars + (random() % 2) * 8;
        const uint64_t value = random() % 3 == 0 ? ~uint64_t{0} : random() % 64;
        std::memcpy(damaged.data() + at, &value, 8);
        damaged.resize(damaged.size() - 4);
        const uint32_t crc = Crc32c(damaged);
        damaged.append(reinterpret_cast<const char*>(&crc), 4);
        if (damaged == entry) continue;
        break;
      }
    }
    absl::StatusOr<CachedRows> decoded = DecodeCacheEntry(damaged, key, 8);
    if (decoded.ok()) {
      EXPECT_EQ(decoded->rows.size(), static_cast<size_t>(decoded->num_rows * 8)) << trial;
      continue;
    }
    EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss) << trial;
    ++refused;
  }
  std::string garbage;
  for (int trial = 0; trial < 2000; ++trial) {
    garbage.resize(random() % 400);
    for (char& c : garbage) c = static_cast<char>(random());
    EXPECT_FALSE(DecodeCacheEntry(garbage, key, 8).ok());
  }
  std::printf("%d of 20000 damaged entries refused\n", refused);
  EXPECT_GT(refused, 19000);
}

TEST(DiskEmbeddingStoreTest, WritesReadsAndEvictsTheLeastRecentlyUsed) {
  const std::string dir = FreshDir("lru");
  auto store = DiskEmbeddingStore::Open(dir + "/nested", 250);
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string a = Sha256Hex("a"), b = Sha256Hex("b"), c = Sha256Hex("c");
  ASSERT_TRUE((*store)->Write(a, std::string(100, 'a')).ok());
  ASSERT_TRUE((*store)->Write(b, std::string(100, 'b')).ok());
  EXPECT_EQ((*store)->total_bytes(), 200);
  ASSERT_TRUE((*store)->Read(a).ok());  // a is now more recent than b
  ASSERT_TRUE((*store)->Write(c, std::string(100, 'c')).ok());
  EXPECT_EQ((*store)->num_entries(), 2);
  EXPECT_EQ((*store)->total_bytes(), 200);
  EXPECT_FALSE((*store)->Read(b)->has_value()) << "b was the least recently used";
  EXPECT_EQ(**(*store)->Read(a), std::string(100, 'a'));
  EXPECT_FALSE(fs::exists(dir + "/nested/" + b + ".emb"));
  // Larger than the whole cap: not kept, nothing else evicted.
  ASSERT_TRUE((*store)->Write(Sha256Hex("huge"), std::string(300, 'h')).ok());
  EXPECT_EQ((*store)->num_entries(), 2);
  // No temporary file is left behind.
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir + "/nested")) {
    EXPECT_EQ(entry.path().extension(), ".emb") << entry.path();
    ++files;
  }
  EXPECT_EQ(files, 2);
}

TEST(DiskEmbeddingStoreTest, ReopeningIndexesEntriesAndDropsLeftovers) {
  const std::string dir = FreshDir("reopen");
  const std::string a = Sha256Hex("a"), b = Sha256Hex("b");
  {
    auto store = DiskEmbeddingStore::Open(dir, 1000);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->Write(a, "first").ok());
    ASSERT_TRUE((*store)->Write(b, "second").ok());
  }
  std::ofstream(dir + "/" + a + ".7.tmp") << "a write a crash interrupted";
  std::ofstream(dir + "/notes.txt") << "not ours";
  auto store = DiskEmbeddingStore::Open(dir, 1000);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->num_entries(), 2);
  EXPECT_EQ(**(*store)->Read(b), "second");
  EXPECT_FALSE(fs::exists(dir + "/" + a + ".7.tmp"));
  EXPECT_TRUE(fs::exists(dir + "/notes.txt"));
  fs::remove(dir + "/" + b + ".emb");  // deleted behind the store's back: a miss
  EXPECT_FALSE((*store)->Read(b)->has_value());
  EXPECT_EQ((*store)->num_entries(), 1);
  // A cap below what is there evicts at open, oldest first.
  auto small = DiskEmbeddingStore::Open(dir, 1);
  ASSERT_TRUE(small.ok());
  EXPECT_EQ((*small)->num_entries(), 0);
  EXPECT_EQ(DiskEmbeddingStore::Open(dir, 0).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DiskEmbeddingStore::Open("/proc/version/cache", 10).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// A cap lowered below several entries evicts them at open in one pass, least recently used (by the
// files' modification times, which a hit renews) first.
TEST(DiskEmbeddingStoreTest, ALoweredCapKeepsTheMostRecentlyUsedEntries) {
  const std::string dir = FreshDir("lowered");
  std::vector<std::string> keys;
  {
    auto store = DiskEmbeddingStore::Open(dir, 1000);
    ASSERT_TRUE(store.ok());
    for (int i = 0; i < 6; ++i) {
      keys.push_back(Sha256Hex("entry " + std::to_string(i)));
      ASSERT_TRUE((*store)->Write(keys.back(), "ten bytes!").ok());
      absl::SleepFor(absl::Milliseconds(20));  // distinct modification times
    }
    ASSERT_TRUE((*store)->Read(keys[0])->has_value());  // the oldest write, read last
  }
  auto store = DiskEmbeddingStore::Open(dir, 25);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->num_entries(), 2);
  EXPECT_EQ((*store)->total_bytes(), 20);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ((*store)->Read(keys[i])->has_value(), i == 0 || i == 5) << "entry " << i;
  }
}

// A miss, then the store of its rows, then a hit with the same rows; a damaged file is a corrupt
// miss that deletes it.
TEST(EmbeddingCacheTest, MissStoreHitAndCorruptEntries) {
  EmbeddingCacheConfig config;
  config.dir = FreshDir("pool");
  config.model_id = "model";
  config.hidden_size = 4;
  CountingObserver observer;
  auto cache = EmbeddingCache::Open(config, &observer);
  ASSERT_TRUE(cache.ok()) << cache.status();
  const std::vector<float> features = Features(0, 512);
  EmbeddingCache::Answer miss = LookupAndWait(**cache, features);
  EXPECT_EQ(miss.cached.num_rows, 0);
  EXPECT_EQ(miss.key, EmbeddingCacheKey("model", features, 4, 3));
  const std::vector<float> rows = Features(7, 2 * 4);
  (*cache)->Store(miss.key, rows, 2);
  ASSERT_TRUE((*cache)->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ((*cache)->disk().num_entries(), 1);
  EmbeddingCache::Answer hit = LookupAndWait(**cache, features);
  EXPECT_EQ(hit.cached.num_rows, 2);
  EXPECT_EQ(hit.cached.rows, rows);
  {
    std::fstream file(config.dir + "/" + miss.key + ".emb",
                      std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(100);
    file.put('\x7f');
  }
  EmbeddingCache::Answer corrupt = LookupAndWait(**cache, features);
  EXPECT_EQ(corrupt.cached.num_rows, 0);
  EXPECT_FALSE(fs::exists(config.dir + "/" + miss.key + ".emb"));
  EXPECT_EQ(observer.Count(CacheResult::kMiss), 1);
  EXPECT_EQ(observer.Count(CacheResult::kHit), 1);
  EXPECT_EQ(observer.Count(CacheResult::kCorrupt), 1);
}

// With no room in the queue a lookup answers a miss at once (a final never waits on a backlog).
TEST(EmbeddingCacheTest, AFullQueueAnswersAMissAtOnce) {
  EmbeddingCacheConfig config;
  config.dir = FreshDir("full");
  config.model_id = "model";
  config.hidden_size = 4;
  config.threads = 1;
  config.max_queued_tasks = 1;
  CountingObserver observer;
  auto cache = EmbeddingCache::Open(config, &observer);
  ASSERT_TRUE(cache.ok());
  // The worker is held inside the first lookup's callback; the second fills the queue.
  absl::Notification release;
  ASSERT_TRUE(HoldAWorker(**cache, &release));
  absl::Notification queued_done;
  (*cache)->Lookup(Features(1, 8), 4, 3, [&](EmbeddingCache::Answer) { queued_done.Notify(); });
  bool refused_answered = false;
  (*cache)->Lookup(Features(2, 8), 4, 3, [&](EmbeddingCache::Answer answer) {
    refused_answered = answer.cached.num_rows == 0 && answer.key.empty();
  });
  EXPECT_TRUE(refused_answered) << "answered on the caller's thread, before returning";
  EXPECT_EQ(observer.Count(CacheResult::kError), 1);
  release.Notify();
  EXPECT_TRUE(queued_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

#if !SPEECHLLM_WITH_REDIS
// A build without hiredis (scripts/no_redis_check.sh) refuses a Redis store by name.
TEST(EmbeddingCacheTest, WithoutHiredisARedisStoreIsRefused) {
  EmbeddingCacheConfig config;
  config.dir = FreshDir("no_redis");
  config.model_id = "model";
  config.hidden_size = 4;
  config.redis = RedisStoreConfig{};
  const auto cache = EmbeddingCache::Open(config, nullptr);
  EXPECT_EQ(cache.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(cache.status().message(), HasSubstr("SPEECHLLM_WITH_REDIS"));
}
#endif

}  // namespace
}  // namespace speechllm::streaming
