#include "streaming/embedding_cache.h"

#include <iostream>
#include <utility>

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
  return std::unique_ptr<EmbeddingCache>(new EmbeddingCache(config, *std::move(disk), observer));
}

EmbeddingCache::EmbeddingCache(const EmbeddingCacheConfig& config,
                               std::unique_ptr<DiskEmbeddingStore> disk,
                               EmbeddingCacheObserver* observer)
    : config_(config), disk_(std::move(disk)), observer_(observer) {
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

void EmbeddingCache::Count(CacheResult result) {
  if (observer_ != nullptr) observer_->OnCacheRequest("disk", result);
}

EmbeddingCache::Answer EmbeddingCache::Read(const std::vector<float>& features, int64_t num_frames,
                                            int64_t num_valid_frames) {
  Answer answer;
  answer.key = EmbeddingCacheKey(config_.model_id, features, num_frames, num_valid_frames);
  absl::StatusOr<std::optional<std::string>> bytes = disk_->Read(answer.key);
  if (!bytes.ok()) {
    std::cerr << "speechllm-server: embedding cache read failed (a miss): " << bytes.status()
              << "\n";
    Count(CacheResult::kError);
    return answer;
  }
  if (!bytes->has_value()) {
    Count(CacheResult::kMiss);
    return answer;
  }
  absl::StatusOr<CachedRows> rows = DecodeCacheEntry(**bytes, answer.key, config_.hidden_size);
  if (!rows.ok()) {
    std::cerr << "speechllm-server: embedding cache entry " << answer.key
              << " is corrupt (deleted; a miss): " << rows.status().message() << "\n";
    disk_->Remove(answer.key);
    Count(CacheResult::kCorrupt);
    return answer;
  }
  Count(CacheResult::kHit);
  answer.cached = *std::move(rows);
  return answer;
}

void EmbeddingCache::Lookup(std::vector<float> features, int64_t num_frames,
                            int64_t num_valid_frames, std::function<void(Answer)> done) {
  // Held in a shared_ptr so that a refused task leaves `done` here to answer the miss.
  auto shared_done = std::make_shared<std::function<void(Answer)>>(std::move(done));
  auto task = [this, features = std::move(features), num_frames, num_valid_frames, shared_done]() {
    (*shared_done)(Read(features, num_frames, num_valid_frames));
  };
  if (!Enqueue(std::move(task))) {
    Count(CacheResult::kError);
    (*shared_done)(Answer{});
  }
}

void EmbeddingCache::Store(std::string key, std::vector<float> rows, int64_t num_rows) {
  auto task = [this, key = std::move(key), rows = std::move(rows), num_rows]() {
    const std::string entry = EncodeCacheEntry(key, rows, num_rows, config_.hidden_size);
    if (absl::Status written = disk_->Write(key, entry); !written.ok()) {
      std::cerr << "speechllm-server: embedding cache write failed: " << written << "\n";
    }
  };
  Enqueue(std::move(task));
}

}  // namespace speechllm::streaming
