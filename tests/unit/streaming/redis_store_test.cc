// The embedding cache's Redis store against a real redis-server started on a free port: SET with
// the TTL, GET, DEL; the circuit breaker when Redis is gone or refuses commands, and not for a
// pooled connection Redis closed; and two caches with their own disks
// sharing one Redis (a disk miss is a Redis hit, copied to disk; a corrupt Redis entry is deleted).
#include <hiredis/hiredis.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "streaming/embedding_cache.h"
#include "streaming/redis_embedding_store.h"
#include "tests/unit/streaming/embedding_cache_test_util.h"

extern char** environ;

namespace speechllm::streaming {
namespace {

// A redis-server child on a port picked from the process id (retried on a clash).
class RedisServer {
 public:
  bool Start() {
    for (int attempt = 0; attempt < 10; ++attempt) {
      port_ = 20000 + (getpid() * 7 + attempt * 131) % 30000;
      const std::string port = std::to_string(port_);
      std::vector<std::string> args = {SPEECHLLM_REDIS_SERVER_BIN,
                                       "--port",
                                       port,
                                       "--bind",
                                       "127.0.0.1",
                                       "--save",
                                       "",
                                       "--appendonly",
                                       "no",
                                       "--loglevel",
                                       "warning"};
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      if (posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return false;
      for (int wait = 0; wait < 100; ++wait) {
        if (Ping()) return true;
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) break;  // exited: the port was taken
        absl::SleepFor(absl::Milliseconds(20));
      }
      Stop();
    }
    return false;
  }
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  ~RedisServer() { Stop(); }
  int port() const { return port_; }
  // One command on a fresh connection: the reply's integer or string, "" on failure.
  std::string Query(const std::vector<std::string>& args) const {
    redisContext* c = redisConnect("127.0.0.1", port_);
    if (c == nullptr || c->err != 0) {
      if (c != nullptr) redisFree(c);
      return "";
    }
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lengths.data()));
    std::string out;
    if (reply != nullptr && reply->type == REDIS_REPLY_INTEGER)
      out = std::to_string(reply->integer);
    if (reply != nullptr &&
        (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS))
      out.assign(reply->str, reply->len);
    if (reply != nullptr) freeReplyObject(reply);
    redisFree(c);
    return out;
  }

 private:
  bool Ping() const { return Query({"PING"}) == "PONG"; }
  pid_t pid_ = -1;
  int port_ = 0;
};

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::string(SPEECHLLM_REDIS_SERVER_BIN).size() > 0)
        << "redis-server is missing: apt-get install redis-server";
    ASSERT_TRUE(redis_.Start()) << "redis-server did not start";
  }
  RedisStoreConfig Config() const {
    RedisStoreConfig config;
    config.port = redis_.port();
    config.ttl = absl::Seconds(600);
    config.open_for = absl::Milliseconds(300);
    return config;
  }
  RedisServer redis_;
};

TEST_F(RedisStoreTest, WritesWithTheTtlReadsAndRemoves) {
  auto store = RedisEmbeddingStore::Create(Config());
  ASSERT_TRUE(store.ok()) << store.status();
  const std::string key = "ab12", bytes("binary\0bytes\xff", 13);
  EXPECT_FALSE((*store)->Read(key)->has_value());
  ASSERT_TRUE((*store)->Write(key, bytes).ok());
  EXPECT_EQ(**(*store)->Read(key), bytes);
  const int ttl = std::stoi(redis_.Query({"TTL", "speechllm:emb:" + key}));
  std::printf("TTL of the entry: %d s\n", ttl);
  EXPECT_GT(ttl, 590);
  EXPECT_LE(ttl, 600);
  (*store)->Remove(key);
  EXPECT_FALSE((*store)->Read(key)->has_value());
  EXPECT_EQ(RedisEmbeddingStore::Create(RedisStoreConfig{"", 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Redis gone: three failures in a row open the breaker, which then answers at once without trying;
// after open_for it tries again, and a Redis back up closes it.
TEST_F(RedisStoreTest, TheBreakerOpensAfterFailuresAndClosesWhenRedisIsBack) {
  auto store = RedisEmbeddingStore::Create(Config());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Write("k", "v").ok());
  redis_.Stop();
  for (int i = 0; i < 3; ++i) {
    const auto read = (*store)->Read("k");
    EXPECT_EQ(read.status().code(), absl::StatusCode::kUnavailable);
  }
  EXPECT_TRUE((*store)->breaker_open());
  const absl::Time start = absl::Now();
  const auto skipped = (*store)->Read("k");
  EXPECT_NE(std::string(skipped.status().message()).find("circuit breaker is open"),
            std::string::npos)
      << skipped.status();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(50));
  ASSERT_TRUE(redis_.Start());
  absl::SleepFor(absl::Milliseconds(350));
  EXPECT_FALSE((*store)->breaker_open());
  ASSERT_TRUE((*store)->Write("k", "again").ok());
  EXPECT_EQ(**(*store)->Read("k"), "again");
}

// Redis closed the idle pooled connection (its client timeout, a restart, a failover): the next
// command retries on a new connection instead of failing and counting toward the breaker.
TEST_F(RedisStoreTest, AConnectionRedisClosedIsReplacedNotCounted) {
  auto store = RedisEmbeddingStore::Create(Config());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->Write("k", "v").ok());  // leaves one connection in the pool
  const std::string killed = redis_.Query({"CLIENT", "KILL", "TYPE", "normal"});
  std::printf("connections Redis closed: %s\n", killed.c_str());
  ASSERT_EQ(killed, "1");
  for (int i = 0; i < 3; ++i) {
    const auto read = (*store)->Read("k");
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(**read, "v");
  }
  EXPECT_FALSE((*store)->breaker_open());
}

// Error replies (NOAUTH, READONLY, OOM, here WRONGTYPE) leave the connection usable but count
// toward the breaker: a Redis that refuses every command is skipped like one that is down.
TEST_F(RedisStoreTest, ErrorRepliesOpenTheBreaker) {
  auto store = RedisEmbeddingStore::Create(Config());
  ASSERT_TRUE(store.ok());
  ASSERT_EQ(redis_.Query({"RPUSH", "speechllm:emb:list", "x"}), "1");
  for (int i = 0; i < 3; ++i) {
    const auto read = (*store)->Read("list");
    EXPECT_EQ(read.status().code(), absl::StatusCode::kUnavailable);
    EXPECT_NE(std::string(read.status().message()).find("WRONGTYPE"), std::string::npos)
        << read.status();
  }
  EXPECT_TRUE((*store)->breaker_open());
}

TEST_F(RedisStoreTest, ReplicasShareEntriesThroughRedis) {
  auto make = [&](const std::string& name, CountingObserver* observer) {
    EmbeddingCacheConfig config;
    config.dir = ::testing::TempDir() + "speechllm_redis_" + std::to_string(getpid()) + name;
    std::filesystem::remove_all(config.dir);
    config.model_id = "model";
    config.hidden_size = 4;
    config.redis = Config();
    auto cache = EmbeddingCache::Open(config, observer);
    EXPECT_TRUE(cache.ok()) << cache.status();
    return cache.ok() ? *std::move(cache) : nullptr;
  };
  CountingObserver a_counts, b_counts;
  std::unique_ptr<EmbeddingCache> a = make("a", &a_counts), b = make("b", &b_counts);
  ASSERT_TRUE(a != nullptr && b != nullptr);
  const std::vector<float> features(64, 0.5f), rows = {1, 2, 3, 4, 5, 6, 7, 8};
  const EmbeddingCache::Answer miss = LookupAndWait(*a, features);
  EXPECT_EQ(miss.cached.num_rows, 0);
  EXPECT_EQ(a_counts.Count(CacheResult::kMiss, "redis"), 1);
  a->Store(miss.key, rows, 2);
  ASSERT_TRUE(a->WaitIdle(absl::Seconds(10)));
  // Replica b: its disk misses, Redis hits, and the entry is copied to its disk.
  const EmbeddingCache::Answer shared = LookupAndWait(*b, features);
  EXPECT_EQ(shared.cached.rows, rows);
  EXPECT_EQ(b_counts.Count(CacheResult::kMiss, "disk"), 1);
  EXPECT_EQ(b_counts.Count(CacheResult::kHit, "redis"), 1);
  EXPECT_EQ(b->disk().num_entries(), 1);
  EXPECT_EQ(LookupAndWait(*b, features).cached.rows, rows);
  EXPECT_EQ(b_counts.Count(CacheResult::kHit, "disk"), 1);
  // A damaged Redis entry is a counted miss and is deleted.
  const std::string other_key = LookupAndWait(*a, std::vector<float>(64, 0.25f)).key;
  redis_.Query({"SET", "speechllm:emb:" + other_key, "not an entry"});
  EXPECT_EQ(LookupAndWait(*a, std::vector<float>(64, 0.25f)).cached.num_rows, 0);
  EXPECT_EQ(a_counts.Count(CacheResult::kCorrupt, "redis"), 1);
  EXPECT_EQ(redis_.Query({"EXISTS", "speechllm:emb:" + other_key}), "0");
}

}  // namespace
}  // namespace speechllm::streaming
