// DiskEmbeddingStore: the embedding cache's local store (ARCHITECTURE.md 8). One file per key in a
// directory, written to a temporary name then renamed, within a size cap by evicting the least
// recently used entries. Owned by the EmbeddingCache; its worker threads call it concurrently (the
// index is behind mu_, file I/O outside it). One server process per directory.
#ifndef SPEECHLLM_STREAMING_DISK_EMBEDDING_STORE_H_
#define SPEECHLLM_STREAMING_DISK_EMBEDDING_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"

namespace speechllm::streaming {

class DiskEmbeddingStore {
 public:
  // Creates `dir` if needed, indexes the entries already there (oldest modification first in the
  // eviction order), deletes leftover temporary files and evicts down to `max_bytes`. An error when
  // the directory cannot be created or listed, or max_bytes < 1.
  static absl::StatusOr<std::unique_ptr<DiskEmbeddingStore>> Open(const std::string& dir,
                                                                  int64_t max_bytes);

  // The entry's bytes; nullopt when there is none. An error when it exists but cannot be read.
  absl::StatusOr<std::optional<std::string>> Read(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);
  // Writes or replaces the entry, then evicts the least recently used others beyond max_bytes (an
  // entry larger than max_bytes is not kept). An error when the file cannot be written.
  absl::Status Write(const std::string& key, absl::string_view bytes) ABSL_LOCKS_EXCLUDED(mu_);
  // Deletes the entry (a corrupt one), if any.
  void Remove(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);

  int64_t total_bytes() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t num_entries() const ABSL_LOCKS_EXCLUDED(mu_);
  const std::string& dir() const { return dir_; }

 private:
  DiskEmbeddingStore(std::string dir, int64_t max_bytes);
  std::string PathOf(const std::string& key) const;
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ForgetLocked(const std::string& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  struct Entry {
    int64_t bytes = 0;
    uint64_t last_use = 0;  // of clock_: larger is more recent
  };
  const std::string dir_;
  const int64_t max_bytes_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> index_ ABSL_GUARDED_BY(mu_);
  int64_t total_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t clock_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_temporary_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_DISK_EMBEDDING_STORE_H_
