// EmbeddingCache: looks up and stores exact finals' projected audio embeddings (ARCHITECTURE.md 8)
// on its own worker threads (the cache I/O pool), never on a gRPC thread or the engine loop.
// Owned by the server's main; sessions call Lookup (input half) and Store (output half) from any
// thread; the callbacks run on the workers. A corrupt entry, a failed read or a full queue is a
// miss: counted through the observer, never an error for the request.
#ifndef SPEECHLLM_STREAMING_EMBEDDING_CACHE_H_
#define SPEECHLLM_STREAMING_EMBEDDING_CACHE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "streaming/disk_embedding_store.h"
#include "streaming/embedding_cache_entry.h"
#include "streaming/redis_embedding_store.h"

namespace speechllm::streaming {

enum class CacheResult { kHit, kMiss, kError, kCorrupt };

// Counts lookups per store ("disk", "redis") and result; called on the worker threads.
class EmbeddingCacheObserver {
 public:
  virtual ~EmbeddingCacheObserver() = default;
  virtual void OnCacheRequest(const char* store, CacheResult result) = 0;
};

struct EmbeddingCacheConfig {
  std::string dir;                // the disk store's directory
  int64_t max_bytes = 1ll << 30;  // the disk store's size cap
  int threads = 2;                // ARCHITECTURE.md 7's cache_threads
  // Lookups or stores waiting beyond this many are not queued: a lookup answers a miss at once, a
  // store is dropped. Stores are also dropped beyond max_queued_store_bytes of rows.
  int max_queued_tasks = 256;
  int64_t max_queued_store_bytes = 256ll << 20;
  // A lookup that came behind other work (no idle worker) and is still queued this long after it
  // came answers a miss without reading: an exact final waits on it, and the encoder pass it would
  // save takes less. One that found an idle worker is never late (a slow wake-up is no backlog).
  absl::Duration lookup_deadline = absl::Milliseconds(100);
  std::string model_id;  // ModelFingerprint: part of every key
  int64_t hidden_size = 0;
  // A shared Redis store behind the disk (a fleet's replicas share it): a disk miss is looked up
  // there and a Redis hit copied to disk; a miss's rows go to both. Needs SPEECHLLM_WITH_REDIS.
  std::optional<RedisStoreConfig> redis;
};

class EmbeddingCache {
 public:
  // Opens the disk store and starts the workers.
  static absl::StatusOr<std::unique_ptr<EmbeddingCache>> Open(const EmbeddingCacheConfig& config,
                                                              EmbeddingCacheObserver* observer);
  ~EmbeddingCache();  // answers what is queued, then joins the workers
  EmbeddingCache(const EmbeddingCache&) = delete;
  EmbeddingCache& operator=(const EmbeddingCache&) = delete;

  struct Answer {
    std::string key;
    CachedRows cached;  // num_rows 0: a miss
  };
  // Computes the key of a segment's features and reads its entry on a worker; `done` gets the
  // answer exactly once (on a worker, or at once when the queue is full). Lookups go before every
  // queued store, and stores never take the last worker (with two or more), so a final never
  // waits behind writes.
  void Lookup(std::vector<float> features, int64_t num_frames, int64_t num_valid_frames,
              std::function<void(Answer)> done) ABSL_LOCKS_EXCLUDED(mu_);
  // Writes the rows under `key` on a worker (dropped when the queue is full).
  void Store(std::string key, std::vector<float> rows, int64_t num_rows) ABSL_LOCKS_EXCLUDED(mu_);

  // Waits until every queued lookup and store is done (tests; the destructor drains them too);
  // false when `timeout` passed first.
  bool WaitIdle(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

  const DiskEmbeddingStore& disk() const { return *disk_; }

 private:
  EmbeddingCache(const EmbeddingCacheConfig& config, std::unique_ptr<DiskEmbeddingStore> disk,
                 std::unique_ptr<RedisEmbeddingStore> redis, EmbeddingCacheObserver* observer);
  // The rows of `key` in Redis (copied to disk on a hit), counted; nullopt when there are none.
  std::optional<CachedRows> ReadRedis(const std::string& key);
  // A queued lookup: run(late) reads, or answers a miss at once when `late`.
  struct QueuedLookup {
    std::function<void(bool late)> run;
    absl::Time queued_at;
    bool behind_work = false;  // set by EnqueueLookup: no worker was idle
  };
  struct QueuedStore {
    std::function<void()> run;
    int64_t bytes = 0;
  };
  bool EnqueueLookup(QueuedLookup lookup) ABSL_LOCKS_EXCLUDED(mu_);
  bool EnqueueStore(QueuedStore store) ABSL_LOCKS_EXCLUDED(mu_);
  // Whether a worker may start a store now (at most store_workers_ at once).
  bool StoreMayStart() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Work() ABSL_LOCKS_EXCLUDED(mu_);
  Answer Read(const std::vector<float>& features, int64_t num_frames, int64_t num_valid_frames);
  void Count(const char* store, CacheResult result);

  const EmbeddingCacheConfig config_;
  const std::unique_ptr<DiskEmbeddingStore> disk_;
  const std::unique_ptr<RedisEmbeddingStore> redis_;  // null: no Redis
  EmbeddingCacheObserver* const observer_;
  const int store_workers_;  // threads - 1, at least 1
  absl::Mutex mu_;
  std::deque<QueuedLookup> lookups_ ABSL_GUARDED_BY(mu_);
  std::deque<QueuedStore> stores_ ABSL_GUARDED_BY(mu_);
  int64_t queued_store_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int running_ ABSL_GUARDED_BY(mu_) = 0;         // tasks a worker is running
  int running_stores_ ABSL_GUARDED_BY(mu_) = 0;  // of which stores
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_EMBEDDING_CACHE_H_
