// RedisEmbeddingStore: the embedding cache's shared store for a fleet (ARCHITECTURE.md 8, built
// with SPEECHLLM_WITH_REDIS): entries under "speechllm:emb:<key>" with a TTL, short connect and
// command timeouts, and a circuit breaker that skips Redis for a while after failures in a row.
// Owned by the EmbeddingCache; its worker threads call it concurrently (each call takes a
// connection from a pool behind mu_).
#ifndef SPEECHLLM_STREAMING_REDIS_EMBEDDING_STORE_H_
#define SPEECHLLM_STREAMING_REDIS_EMBEDDING_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

struct redisContext;
struct redisReply;

namespace speechllm::streaming {

struct RedisStoreConfig {
  std::string host = "127.0.0.1";
  int port = 6379;
  absl::Duration ttl = absl::Hours(24);
  absl::Duration connect_timeout = absl::Milliseconds(200);
  absl::Duration command_timeout = absl::Milliseconds(500);
  int failures_to_open = 3;                     // failures in a row that open the breaker
  absl::Duration open_for = absl::Seconds(30);  // how long it then skips Redis
};

class RedisEmbeddingStore {
 public:
  // Checks the configuration only: a Redis that is down at start is a circuit to retry later.
  static absl::StatusOr<std::unique_ptr<RedisEmbeddingStore>> Create(RedisStoreConfig config);
  ~RedisEmbeddingStore();

  // The entry's bytes; nullopt when there is none. UNAVAILABLE on a connection or command failure,
  // or at once while the breaker is open.
  absl::StatusOr<std::optional<std::string>> Read(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);
  // SET with the TTL. UNAVAILABLE as for Read.
  absl::Status Write(const std::string& key, absl::string_view bytes) ABSL_LOCKS_EXCLUDED(mu_);
  // DEL (a corrupt entry); failures are ignored.
  void Remove(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);

  bool breaker_open() const ABSL_LOCKS_EXCLUDED(mu_);

  struct ReplyDeleter {
    void operator()(redisReply* reply) const;
  };
  using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

 private:
  explicit RedisEmbeddingStore(RedisStoreConfig config);
  // A pooled connection (`*pooled` true) or a new one, or UNAVAILABLE (breaker open, connect
  // failed).
  absl::StatusOr<redisContext*> Acquire(bool* pooled) ABSL_LOCKS_EXCLUDED(mu_);
  // A new connection with the timeouts set, or UNAVAILABLE (counted as a failure).
  absl::StatusOr<redisContext*> Connect() ABSL_LOCKS_EXCLUDED(mu_);
  // Returns a usable connection to the pool; a success also ends a run of failures.
  void Keep(redisContext* connection, bool succeeded) ABSL_LOCKS_EXCLUDED(mu_);
  // One command: its reply, or UNAVAILABLE for a failed connection (a pooled one that Redis
  // closed is retried once on a new connection first) or an error reply; both count toward the
  // breaker.
  absl::StatusOr<Reply> Run(const std::vector<std::string>& arguments) ABSL_LOCKS_EXCLUDED(mu_);
  void NoteFailure() ABSL_LOCKS_EXCLUDED(mu_);

  const RedisStoreConfig config_;
  mutable absl::Mutex mu_;
  std::vector<redisContext*> idle_ ABSL_GUARDED_BY(mu_);
  int failures_in_a_row_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time open_until_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_REDIS_EMBEDDING_STORE_H_
