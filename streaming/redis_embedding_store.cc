#include "streaming/redis_embedding_store.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace speechllm::streaming {
namespace {

constexpr absl::string_view kKeyPrefix = "speechllm:emb:";

struct ReplyDeleter {
  void operator()(redisReply* reply) const { freeReplyObject(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// Sends one command of binary-safe arguments.
Reply Command(redisContext* connection, const std::vector<std::string>& arguments) {
  std::vector<const char*> pointers;
  std::vector<size_t> lengths;
  for (const std::string& argument : arguments) {
    pointers.push_back(argument.data());
    lengths.push_back(argument.size());
  }
  return Reply(static_cast<redisReply*>(redisCommandArgv(
      connection, static_cast<int>(arguments.size()), pointers.data(), lengths.data())));
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisEmbeddingStore>> RedisEmbeddingStore::Create(
    RedisStoreConfig config) {
  if (config.host.empty() || config.port < 1 || config.port > 65535) {
    return absl::InvalidArgumentError("the Redis store needs a host and a port in [1, 65535]");
  }
  if (config.ttl < absl::Seconds(1) || config.failures_to_open < 1) {
    return absl::InvalidArgumentError("the Redis store needs a TTL of at least 1 s");
  }
  return std::unique_ptr<RedisEmbeddingStore>(new RedisEmbeddingStore(std::move(config)));
}

RedisEmbeddingStore::RedisEmbeddingStore(RedisStoreConfig config) : config_(std::move(config)) {}

RedisEmbeddingStore::~RedisEmbeddingStore() {
  absl::MutexLock lock(&mu_);
  for (redisContext* connection : idle_) redisFree(connection);
}

bool RedisEmbeddingStore::breaker_open() const {
  absl::MutexLock lock(&mu_);
  return absl::Now() < open_until_;
}

void RedisEmbeddingStore::NoteFailure() {
  absl::MutexLock lock(&mu_);
  if (++failures_in_a_row_ >= config_.failures_to_open) {
    open_until_ = absl::Now() + config_.open_for;
    failures_in_a_row_ = 0;
  }
}

absl::StatusOr<redisContext*> RedisEmbeddingStore::Acquire() {
  {
    absl::MutexLock lock(&mu_);
    if (absl::Now() < open_until_) {
      return absl::UnavailableError("Redis skipped: the circuit breaker is open");
    }
    if (!idle_.empty()) {
      redisContext* connection = idle_.back();
      idle_.pop_back();
      return connection;
    }
  }
  redisContext* connection = redisConnectWithTimeout(config_.host.c_str(), config_.port,
                                                     absl::ToTimeval(config_.connect_timeout));
  if (connection == nullptr || connection->err != 0) {
    const std::string why = connection == nullptr ? "no memory" : connection->errstr;
    if (connection != nullptr) redisFree(connection);
    NoteFailure();
    return absl::UnavailableError(
        absl::StrCat("cannot connect to Redis at ", config_.host, ":", config_.port, ": ", why));
  }
  redisSetTimeout(connection, absl::ToTimeval(config_.command_timeout));
  return connection;
}

void RedisEmbeddingStore::Release(redisContext* connection, bool healthy) {
  if (!healthy) {
    redisFree(connection);
    NoteFailure();
    return;
  }
  absl::MutexLock lock(&mu_);
  failures_in_a_row_ = 0;
  idle_.push_back(connection);
}

absl::StatusOr<std::optional<std::string>> RedisEmbeddingStore::Read(const std::string& key) {
  absl::StatusOr<redisContext*> connection = Acquire();
  if (!connection.ok()) return connection.status();
  Reply reply = Command(*connection, {"GET", absl::StrCat(kKeyPrefix, key)});
  if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) {
    const std::string why = reply == nullptr ? (*connection)->errstr : reply->str;
    Release(*connection, /*healthy=*/reply != nullptr);  // an error reply leaves it usable
    return absl::UnavailableError(absl::StrCat("Redis GET failed: ", why));
  }
  Release(*connection, true);
  if (reply->type == REDIS_REPLY_NIL) return std::nullopt;
  if (reply->type != REDIS_REPLY_STRING)
    return absl::UnavailableError("Redis GET answered something other than a string");
  return std::string(reply->str, reply->len);
}

absl::Status RedisEmbeddingStore::Write(const std::string& key, absl::string_view bytes) {
  absl::StatusOr<redisContext*> connection = Acquire();
  if (!connection.ok()) return connection.status();
  Reply reply = Command(*connection, {"SET", absl::StrCat(kKeyPrefix, key), std::string(bytes),
                                      "EX", absl::StrCat(absl::ToInt64Seconds(config_.ttl))});
  if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) {
    const std::string why = reply == nullptr ? (*connection)->errstr : reply->str;
    Release(*connection, /*healthy=*/reply != nullptr);
    return absl::UnavailableError(absl::StrCat("Redis SET failed: ", why));
  }
  Release(*connection, true);
  return absl::OkStatus();
}

void RedisEmbeddingStore::Remove(const std::string& key) {
  absl::StatusOr<redisContext*> connection = Acquire();
  if (!connection.ok()) return;
  Reply reply = Command(*connection, {"DEL", absl::StrCat(kKeyPrefix, key)});
  Release(*connection, reply != nullptr);
}

}  // namespace speechllm::streaming
