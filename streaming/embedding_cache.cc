#include "streaming/embedding_cache.h"

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
  if (config.redis.has_value()) {
#if SPEECHLLM_WITH_REDIS
    absl::StatusOr<std::unique_ptr<RedisEmbeddingStore>> created =
        RedisEmbeddingStore::Create(*config.redis);
    if (!created.ok()) return created.status();
    redis = *std::move(created);
#else
    return absl::FailedPreconditionError("this build has no Redis store (SPEECHLLM_WITH_REDIS)");
#endif
  }
  return std::unique_ptr<EmbeddingCache>(
      new EmbeddingCache(config, *std::move(disk), std::move(redis), observer));
}

EmbeddingCache::EmbeddingCache(const EmbeddingCacheConfig& config,
                               std::unique_ptr<DiskEmbeddingStore> disk,
                               std::unique_ptr<RedisEmbeddingStore> redis,
                               EmbeddingCacheObserver* observer)
    : config_(config), disk_(std::move(disk)), redis_(std::move(redis)), observer_(observer) {
  for (int i = 0; i < config_.threads; ++i) workers_.emplace_back([this] { Work(); });
}

EmbeddingCache::~EmbeddingCache() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& worker : workers_) worker.join();
}

bool EmbeddingCache::Enqueue(std::function<void()> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || static_cast<int>(tasks_.size()) >= config_.max_queued_tasks) return false;
  tasks_.push_back(std::move(task));
  return true;
}

void EmbeddingCache::Work() {
  while (true) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !tasks_.empty() || stopping_; };
      mu_.Await(absl::Condition(&ready));
      if (tasks_.empty()) return;  // stopping, and everything queued was done
      task = std::move(tasks_.front());
      tasks_.pop_front();
      ++running_;
    }
    task();
    absl::MutexLock lock(&mu_);
    --running_;
  }
}

bool EmbeddingCache::WaitIdle(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return tasks_.empty() && running_ == 0; };
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
  auto task = [this, features = std::move(features), num_frames, num_valid_frames, shared_done]() {
    (*shared_done)(Read(features, num_frames, num_valid_frames));
  };
  if (!Enqueue(std::move(task))) {
    Count("disk", CacheResult::kError);
    (*shared_done)(Answer{});
  }
}

void EmbeddingCache::Store(std::string key, std::vector<float> rows, int64_t num_rows) {
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
  Enqueue(std::move(task));
}

}  // namespace speechllm::streaming
