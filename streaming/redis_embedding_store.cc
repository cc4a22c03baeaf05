#include "streaming/redis_embedding_store.h"

#if SPEECHLLM_WITH_REDIS

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <utility>

#include "absl/strings/str_cat.h"

namespace speechllm::streaming {
namespace {

constexpr absl::string_view kKeyPrefix = "speechllm:emb:";

using Reply = RedisEmbeddingStore::Reply;

// Sends one command of binary-safe arguments; null when the connection failed.
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

void RedisEmbeddingStore::ReplyDeleter::operator()(redisReply* reply) const {
  freeReplyObject(reply);
}

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

absl::StatusOr<redisContext*> RedisEmbeddingStore::Acquire(bool* pooled) {
  *pooled = false;
  {
    absl::MutexLock lock(&mu_);
    if (absl::Now() < open_until_) {
      return absl::UnavailableError("Redis skipped: the circuit breaker is open");
    }
    if (!idle_.empty()) {
      redisContext* connection = idle_.back();
      idle_.pop_back();
      *pooled = true;
      return connection;
    }
  }
  return Connect();
}

absl::StatusOr<redisContext*> RedisEmbeddingStore::Connect() {
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

void RedisEmbeddingStore::Keep(redisContext* connection, bool succeeded) {
  absl::MutexLock lock(&mu_);
  if (succeeded) failures_in_a_row_ = 0;
  idle_.push_back(connection);
}

absl::StatusOr<RedisEmbeddingStore::Reply> RedisEmbeddingStore::Run(
    const std::vector<std::string>& arguments) {
  bool pooled = false;
  absl::StatusOr<redisContext*> connection = Acquire(&pooled);
  if (!connection.ok()) return connection.status();
  Reply reply = Command(*connection, arguments);
  if (reply == nullptr && pooled) {
    // An idle connection that Redis closed meanwhile (its client timeout, a restart, a
    // failover) says nothing about Redis now: once more on a new one before counting a failure.
    redisFree(*connection);
    connection = Connect();
    if (!connection.ok()) return connection.status();
    reply = Command(*connection, arguments);
  }
  if (reply == nullptr) {
    const std::string why = (*connection)->errstr;
    redisFree(*connection);
    NoteFailure();
    return absl::UnavailableError(absl::StrCat("Redis ", arguments.front(), " failed: ", why));
  }
  if (reply->type == REDIS_REPLY_ERROR) {
    // The connection stays usable, but an error that repeats (NOAUTH, READONLY, OOM) opens the
    // breaker like a failed connection would.
    const std::string why(reply->str, reply->len);
    Keep(*connection, /*succeeded=*/false);
    NoteFailure();
    return absl::UnavailableError(absl::StrCat("Redis ", arguments.front(), " failed: ", why));
  }
  Keep(*connection, /*succeeded=*/true);
  return reply;
}

absl::StatusOr<std::optional<std::string>> RedisEmbeddingStore::Read(const std::string& key) {
  absl::StatusOr<Reply> reply = Run({"GET", absl::StrCat(kKeyPrefix, key)});
  if (!reply.ok()) return reply.status();
  if ((*reply)->type == REDIS_REPLY_NIL) return std::nullopt;
  if ((*reply)->type != REDIS_REPLY_STRING)
    return absl::UnavailableError("Redis GET answered something other than a string");
  return std::string((*reply)->str, (*reply)->len);
}

absl::Status RedisEmbeddingStore::Write(const std::string& key, absl::string_view bytes) {
  return Run({"SET", absl::StrCat(kKeyPrefix, key), std::string(bytes), "EX",
              absl::StrCat(absl::ToInt64Seconds(config_.ttl))})
      .status();
}

void RedisEmbeddingStore::Remove(const std::string& key) {
  Run({"DEL", absl::StrCat(kKeyPrefix, key)}).IgnoreError();
}

}  // namespace speechllm::streaming

#else  // A build without hiredis (-DSPEECHLLM_WITH_REDIS=OFF): no store can be created.

namespace speechllm::streaming {

void RedisEmbeddingStore::ReplyDeleter::operator()(redisReply*) const {}

absl::StatusOr<std::unique_ptr<RedisEmbeddingStore>> RedisEmbeddingStore::Create(RedisStoreConfig) {
  return absl::FailedPreconditionError("this build has no Redis store (SPEECHLLM_WITH_REDIS)");
}
RedisEmbeddingStore::~RedisEmbeddingStore() = default;
bool RedisEmbeddingStore::breaker_open() const { return true; }
absl::StatusOr<std::optional<std::string>> RedisEmbeddingStore::Read(const std::string&) {
  return absl::FailedPreconditionError("this build has no Redis store");
}
absl::Status RedisEmbeddingStore::Write(const std::string&, absl::string_view) {
  return absl::FailedPreconditionError("this build has no Redis store");
}
void RedisEmbeddingStore::Remove(const std::string&) {}

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_WITH_REDIS
