// Helpers of the embedding cache tests: an observer that counts lookups per store and result, a
// lookup that waits for its answer, a worker held in a lookup, fresh directories and feature
// values. Test-only; the observer
// is called on the cache's workers.
#ifndef SPEECHLLM_TESTS_UNIT_STREAMING_EMBEDDING_CACHE_TEST_UTIL_H_
#define SPEECHLLM_TESTS_UNIT_STREAMING_EMBEDDING_CACHE_TEST_UTIL_H_

#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "streaming/embedding_cache.h"

namespace speechllm::streaming {

class CountingObserver : public EmbeddingCacheObserver {
 public:
  void OnCacheRequest(const char* store, CacheResult result) override {
    absl::MutexLock lock(&mu_);
    ++counts_[{store, result}];
  }
  int Count(CacheResult result, const std::string& store = "disk") {
    absl::MutexLock lock(&mu_);
    return counts_[{store, result}];
  }

 private:
  absl::Mutex mu_;
  std::map<std::pair<std::string, CacheResult>, int> counts_ ABSL_GUARDED_BY(mu_);
};

// A path under the test's temporary directory, removed if it exists.
inline std::string FreshDir(const std::string& name) {
  const std::string dir =
      ::testing::TempDir() + "speechllm_cache_" + std::to_string(getpid()) + "_" + name;
  std::filesystem::remove_all(dir);
  return dir;
}

// `count` distinct values from `first` (features or rows).
inline std::vector<float> Features(float first, int count) {
  std::vector<float> values(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) values[i] = first + 0.25f * static_cast<float>(i);
  return values;
}

// Holds one of `cache`'s workers inside a lookup's answer until `release` is notified; returns
// once the worker is held (false after 10 s).
inline bool HoldAWorker(EmbeddingCache& cache, absl::Notification* release) {
  auto held = std::make_shared<absl::Notification>();
  cache.Lookup(Features(-1, 8), 4, 3, [held, release](EmbeddingCache::Answer) {
    held->Notify();
    release->WaitForNotification();
  });
  return held->WaitForNotificationWithTimeout(absl::Seconds(10));
}

// Looks `features` up (as 4 frames, 3 valid) and waits up to 10 s for the answer.
inline EmbeddingCache::Answer LookupAndWait(EmbeddingCache& cache,
                                            const std::vector<float>& features) {
  absl::Notification done;
  EmbeddingCache::Answer answer;
  cache.Lookup(features, 4, 3, [&](EmbeddingCache::Answer a) {
    answer = std::move(a);
    done.Notify();
  });
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  return answer;
}

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_TESTS_UNIT_STREAMING_EMBEDDING_CACHE_TEST_UTIL_H_
