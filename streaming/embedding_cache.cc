#include "streaming/embedding_cache.h"

#include <algorithm>
#include <iostream>
#include <utility>

#include "absl/strings/match.h"

namespace speechllm::streaming {

absl::StatusOr<std::unique_ptr<EmbeddingCache>> EmbeddingCache::Open(
    const EmbeddingCacheConfig& config, EmbeddingCacheObserver* observer) {
  if (config.threads < 1 || config.max_queued_tasks < 1 || config.hidden_size < 1 ||
      config.model_id.empty()) {
    return absl::InvalidArgumentError(
        "the embedding cache needs threads >= 1, max_queued_tasks >= 1, a hidden size and a model "
        "id");
  }
  absl::StatusOr<std::unique_ptr<DiskEmbeddingStore>> disk =
      DiskEmbeddingStore::Open(config.dir, config.max_bytes);
  if (!disk.ok()) return disk.status();
  std::unique_ptr<RedisEmbeddingStore> redis;
  if (config.redis.has_value()) {  // FAILED_PRECONDITION in a build without hiredis
    absl::StatusOr<std::unique_ptr<RedisEmbeddingStore>> created =
        RedisEmbeddingStore::Create(*config.redis);
    if (!created.ok()) return created.status();
    redis = *std::move(created);
  }
  return std::unique_ptr<EmbeddingCache>(
      new EmbeddingCache(config, *std::move(disk), std::move(redis), observer));
}

EmbeddingCache::EmbeddingCache(const EmbeddingCacheConfig& config,
                               std::unique_ptr<DiskEmbeddingStore> disk,
                               std::unique_ptr<RedisEmbeddingStore> redis,
                               EmbeddingCacheObserver* observer)
    : config_(config),
      disk_(std::move(disk)),
      redis_(std::move(redis)),
      observer_(observer),
      store_workers_(std::max(1, config.threads - 1)) {
  for (int i = 0; i < config_.threads; ++i) workers_.emplace_back([this] { Work(); });
}

EmbeddingCache::~EmbeddingCache() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& worker : workers_) worker.join();
}

bool EmbeddingCache::EnqueueLookup(QueuedLookup lookup) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || static_cast<int>(lookups_.size()) >= config_.max_queued_tasks) return false;
  lookup.behind_work = !lookups_.empty() || running_ >= config_.threads;
  lookups_.push_back(std::move(lookup));
  return true;
}

bool EmbeddingCache::EnqueueStore(QueuedStore store) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || static_cast<int>(stores_.size()) >= config_.max_queued_tasks ||
      queued_store_bytes_ + store.bytes > config_.max_queued_store_bytes) {
    return false;
  }
  queued_store_bytes_ += store.bytes;
  stores_.push_back(std::move(store));
  return true;
}

bool EmbeddingCache::StoreMayStart() const {
  return !stores_.empty() && running_stores_ < store_workers_;
}

void EmbeddingCache::Work() {
  while (true) {
    std::function<void(bool)> lookup;
    std::function<void()> store;
    bool late = false;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !lookups_.empty() || StoreMayStart() ||
               (stopping_ && stores_.empty() && lookups_.empty());
      };
      mu_.Await(absl::Condition(&ready));
      if (!lookups_.empty()) {
        late = lookups_.front().behind_work &&
               absl::Now() - lookups_.front().queued_at > config_.lookup_deadline;
        lookup = std::move(lookups_.front().run);
        lookups_.pop_front();
      } else if (StoreMayStart()) {
        store = std::move(stores_.front().run);
        queued_store_bytes_ -= stores_.front().bytes;
        stores_.pop_front();
        ++running_stores_;
      } else {
        return;  // stopping, and everything queued was done
      }
      ++running_;
    }
    if (lookup) {
      lookup(late);
    } else {
      store();
    }
    absl::MutexLock lock(&mu_);
    --running_;
    if (store) --running_stores_;
  }
}

bool EmbeddingCache::WaitIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return lookups_.empty() && stores_.empty() && running_ == 0;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&idle), timeout);
}

void EmbeddingCache::Count(const char* store, CacheResult result) {
  if (observer_ != nullptr) observer_->OnCacheRequest(store, result);
}

EmbeddingCache::Answer EmbeddingCache::Read(const std::vector<float>& features, int64_t num_frames,
                                            int64_t num_valid_frames) {
  Answer answer;
  answer.key = EmbeddingCacheKey(config_.model_id, features, num_frames, num_valid_frames);
  absl::StatusOr<std::optional<std::string>> bytes = disk_->Read(answer.key);
  if (!bytes.ok()) {
    std::cerr << "speechllm-server: embedding cache read failed (a miss): " << bytes.status()
              << "\n";
    Count("disk", CacheResult::kError);
  } else if (!bytes->has_value()) {
    Count("disk", CacheResult::kMiss);
  } else if (absl::StatusOr<CachedRows> rows =
                 DecodeCacheEntry(**bytes, answer.key, config_.hidden_size);
             !rows.ok()) {
    std::cerr << "speechllm-server: embedding cache entry " << answer.key
              << " is corrupt (deleted; a miss): " << rows.status().message() << "\n";
    disk_->Remove(answer.key);
    Count("disk", CacheResult::kCorrupt);
  } else {
    Count("disk", CacheResult::kHit);
    answer.cached = *std::move(rows);
    return answer;
  }
  if (redis_ != nullptr) {
    if (std::optional<CachedRows> rows = ReadRedis(answer.key)) answer.cached = *std::move(rows);
  }
  return answer;
}

std::optional<CachedRows> EmbeddingCache::ReadRedis(const std::string& key) {
  absl::StatusOr<std::optional<std::string>> bytes = redis_->Read(key);
  if (!bytes.ok()) {
    // While the breaker is open every lookup is skipped at once: not logged each time.
    if (!absl::StartsWith(bytes.status().message(), "Redis skipped")) {
      std::cerr << "speechllm-server: Redis embedding cache read failed (a miss): "
                << bytes.status() << "\n";
    }
    Count("redis", CacheResult::kError);
    return std::nullopt;
  }
  if (!bytes->has_value()) {
    Count("redis", CacheResult::kMiss);
    return std::nullopt;
  }
  absl::StatusOr<CachedRows> rows = DecodeCacheEntry(**bytes, key, config_.hidden_size);
  if (!rows.ok()) {
    std::cerr << "speechllm-server: Redis embedding cache entry " << key
              << " is corrupt (deleted; a miss): " << rows.status().message() << "\n";
    redis_->Remove(key);
    Count("redis", CacheResult::kCorrupt);
    return std::nullopt;
  }
  Count("redis", CacheResult::kHit);
  // This replica's next lookup of the key stays local.
  if (absl::Status written = disk_->Write(key, **bytes); !written.ok()) {
    std::cerr << "speechllm-server: embedding cache write failed: " << written << "\n";
  }
  return *std::move(rows);
}

void EmbeddingCache::Lookup(std::vector<float> features, int64_t num_frames,
                            int64_t num_valid_frames, std::function<void(Answer)> done) {
  // Held in a shared_ptr so that a refused task leaves `done` here to answer the miss.
  auto shared_done = std::make_shared<std::function<void(Answer)>>(std::move(done));
  auto run = [this, features = std::move(features), num_frames, num_valid_frames,
              shared_done](bool late) {
    if (late) {  // a miss without reading; with its key, so that the rows are still stored
      Count("disk", CacheResult::kError);
      Answer miss;
      miss.key = EmbeddingCacheKey(config_.model_id, features, num_frames, num_valid_frames);
      (*shared_done)(std::move(miss));
      return;
    }
    (*shared_done)(Read(features, num_frames, num_valid_frames));
  };
  if (!EnqueueLookup({std::move(run), absl::Now()})) {
    Count("disk", CacheResult::kError);
    (*shared_done)(Answer{});
  }
}

void EmbeddingCache::Store(std::string key, std::vector<float> rows, int64_t num_rows) {
  const int64_t bytes = static_cast<int64_t>(rows.size() * sizeof(float));
  auto task = [this, key = std::move(key), rows = std::move(rows), num_rows]() {
    const std::string entry = EncodeCacheEntry(key, rows, num_rows, config_.hidden_size);
    if (absl::Status written = disk_->Write(key, entry); !written.ok()) {
      std::cerr << "speechllm-server: embedding cache write failed: " << written << "\n";
    }
    if (redis_ != nullptr && !redis_->breaker_open()) {
      if (absl::Status written = redis_->Write(key, entry); !written.ok()) {
        std::cerr << "speechllm-server: Redis embedding cache write failed: " << written << "\n";
      }
    }
  };
  EnqueueStore({std::move(task), bytes});
}

}  // namespace speechllm::streaming
