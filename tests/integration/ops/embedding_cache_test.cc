// The embedding cache in the real server (ARCHITECTURE.md 8, --embedding_cache_dir): Recognize of
// a clip misses and stores its segments' embeddings; the same clip again hits every segment, runs
// no encoder token and gives the same token ids; corrupt entries are misses that are counted and
// rewritten; a restarted server finds its entries; a stream of the same audio hits as well; two
// replicas share entries through a real redis-server (--embedding_cache_redis).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/ops/ops_harness.h"

namespace speechllm::opstest {
namespace {

namespace fs = std::filesystem;

std::string Series(const std::string& result) {
  return "speechllm_embedding_cache_requests_total{result=\"" + result + "\",store=\"disk\"}";
}

struct Recognized {
  grpc::Status status;
  std::vector<uint32_t> token_ids;
  int finals = 0;
};

Recognized RecognizeClip(v1::StreamingSpeech::Stub* stub) {
  v1::RecognizeRequest request;
  request.mutable_config()->mutable_audio()->set_encoding(v1::AudioFormat::WAV);
  request.mutable_config()->mutable_results()->set_token_ids(true);
  request.mutable_config()->mutable_results()->set_final_mode(v1::ResultOptions::EXACT);
  request.set_audio(ReadFileOrEmpty(ClipPath()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::RecognizeResponse response;
  Recognized out;
  out.status = stub->Recognize(&context, request, &response);
  for (const v1::TranscriptUpdate& result : response.results()) {
    out.token_ids.insert(out.token_ids.end(), result.token_ids().begin(), result.token_ids().end());
    out.finals += result.is_final();
  }
  return out;
}

std::vector<std::string> EntryFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) files.push_back(entry.path().string());
  return files;
}

TEST(OpsEmbeddingCache, RepeatedAudioSkipsTheEncoderWithTheSameTokens) {
  const std::string dir = ScratchDir() + "/embedding-cache";
  const std::vector<std::string> flags = {"--embedding_cache_dir=" + dir};
  auto server = ServerProcess::Start(flags);
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = v1::StreamingSpeech::NewStub(
      grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));

  const Recognized first = RecognizeClip(stub.get());
  ASSERT_TRUE(first.status.ok()) << first.status.error_message();
  ASSERT_GE(first.finals, 1);
  auto after_first = Scrape((*server)->metrics_port());
  ASSERT_TRUE(after_first.ok());
  const double segments = Value(*after_first, Series("miss"));
  EXPECT_EQ(segments, first.finals);
  EXPECT_EQ(Value(*after_first, Series("hit")), 0);
  // The entries are written on the cache's workers after the final went out.
  for (int wait = 0; wait < 100 && static_cast<double>(EntryFiles(dir).size()) < segments; ++wait)
    absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(static_cast<double>(EntryFiles(dir).size()), segments);

  const Recognized second = RecognizeClip(stub.get());
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  auto after_second = Scrape((*server)->metrics_port());
  ASSERT_TRUE(after_second.ok());
  const double encoder_first = Value(*after_first, "speechllm_encoder_tokens_total");
  const double encoder_second = Value(*after_second, "speechllm_encoder_tokens_total");
  std::cout << "Recognize of clip_a: " << segments << " segment(s); encoder tokens "
            << encoder_first << " after the first call, " << encoder_second
            << " after the second; hits " << Value(*after_second, Series("hit")) << "\n";
  EXPECT_EQ(second.token_ids, first.token_ids) << "a hit prefills what the miss did";
  EXPECT_EQ(Value(*after_second, Series("hit")), segments);
  EXPECT_GT(encoder_first, 0);
  EXPECT_EQ(encoder_second, encoder_first) << "the second call ran no encoder token";

  // Damage every entry: each is a corrupt miss, the call still answers, the entry is rewritten.
  for (const std::string& file : EntryFiles(dir)) {
    std::fstream bytes(file, std::ios::in | std::ios::out | std::ios::binary);
    bytes.seekp(200);
    bytes.put('\x55');
  }
  const Recognized third = RecognizeClip(stub.get());
  ASSERT_TRUE(third.status.ok()) << third.status.error_message();
  EXPECT_EQ(third.token_ids, first.token_ids);
  auto after_third = Scrape((*server)->metrics_port());
  ASSERT_TRUE(after_third.ok());
  EXPECT_EQ(Value(*after_third, Series("corrupt")), segments);
  EXPECT_GT(Value(*after_third, "speechllm_encoder_tokens_total"), encoder_second);
  EXPECT_NE((*server)->ErrLog().find("is corrupt (deleted; a miss)"), std::string::npos);
  EXPECT_EQ((*server)->Stop(), 0);  // the drain writes what is queued

  // A restarted server finds the rewritten entries; a stream of the same audio hits too.
  auto restarted = ServerProcess::Start(flags);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_NE((*restarted)
                ->ErrLog()
                .find("embedding cache in " + dir + ": " +
                      std::to_string(static_cast<int>(segments)) + " entries"),
            std::string::npos)
      << (*restarted)->ErrLog();
  auto stub2 = v1::StreamingSpeech::NewStub(
      grpc::CreateChannel((*restarted)->address(), grpc::InsecureChannelCredentials()));
  const Recognized fourth = RecognizeClip(stub2.get());
  ASSERT_TRUE(fourth.status.ok()) << fourth.status.error_message();
  EXPECT_EQ(fourth.token_ids, first.token_ids);
  ASSERT_TRUE(StreamClip(stub2.get(), /*realtime=*/false).ok());
  auto after_restart = Scrape((*restarted)->metrics_port());
  ASSERT_TRUE(after_restart.ok());
  std::cout << "restarted: hits " << Value(*after_restart, Series("hit")) << ", misses "
            << Value(*after_restart, Series("miss")) << " (Recognize, then a stream)\n";
  EXPECT_EQ(Value(*after_restart, Series("hit")), 2 * segments);
  EXPECT_EQ(Value(*after_restart, Series("miss")), 0);
}

std::string RedisSeries(const std::string& result) {
  return "speechllm_embedding_cache_requests_total{result=\"" + result + "\",store=\"redis\"}";
}

// Two replicas with their own directories share one real redis-server: the second replica's
// Recognize misses its disk, hits Redis and gives the first one's token ids.
TEST(OpsEmbeddingCache, ReplicasShareEntriesThroughRedis) {
  auto redis_server = RequireTool("redis-server", "redis-server");
  ASSERT_TRUE(redis_server.ok()) << redis_server.status();
  const int redis_port = FreeLoopbackPort();
  const pid_t redis = SpawnProcess({*redis_server, "--port", std::to_string(redis_port), "--bind",
                                    "127.0.0.1", "--save", "", "--appendonly", "no"},
                                   ScratchDir() + "/redis.out", ScratchDir() + "/redis.err");
  ASSERT_GT(redis, 0);
  // Ready once it accepts a connection.
  bool listening = false;
  for (int wait = 0; wait < 250 && !listening; ++wait) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(redis_port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    listening = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
    close(fd);
    if (!listening) absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(listening) << ReadFileOrEmpty(ScratchDir() + "/redis.err");
  const std::string redis_flag = "--embedding_cache_redis=127.0.0.1:" + std::to_string(redis_port);
  auto first =
      ServerProcess::Start({"--embedding_cache_dir=" + ScratchDir() + "/replica-a", redis_flag});
  ASSERT_TRUE(first.ok()) << first.status();
  auto stub_a = v1::StreamingSpeech::NewStub(
      grpc::CreateChannel((*first)->address(), grpc::InsecureChannelCredentials()));
  const Recognized on_a = RecognizeClip(stub_a.get());
  ASSERT_TRUE(on_a.status.ok()) << on_a.status.error_message();
  EXPECT_EQ((*first)->Stop(), 0);  // the drain writes the entries to disk and Redis

  auto second =
      ServerProcess::Start({"--embedding_cache_dir=" + ScratchDir() + "/replica-b", redis_flag});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE((*second)->ErrLog().find("shared through Redis at 127.0.0.1:"), std::string::npos);
  auto stub_b = v1::StreamingSpeech::NewStub(
      grpc::CreateChannel((*second)->address(), grpc::InsecureChannelCredentials()));
  const Recognized on_b = RecognizeClip(stub_b.get());
  ASSERT_TRUE(on_b.status.ok()) << on_b.status.error_message();
  auto samples = Scrape((*second)->metrics_port());
  ASSERT_TRUE(samples.ok());
  std::cout << "replica b: disk misses " << Value(*samples, Series("miss")) << ", Redis hits "
            << Value(*samples, RedisSeries("hit")) << ", encoder tokens "
            << Value(*samples, "speechllm_encoder_tokens_total") << "\n";
  EXPECT_EQ(on_b.token_ids, on_a.token_ids);
  EXPECT_EQ(Value(*samples, Series("miss")), on_a.finals);
  EXPECT_EQ(Value(*samples, RedisSeries("hit")), on_a.finals);
  EXPECT_EQ(Value(*samples, RedisSeries("error")), 0);
  EXPECT_EQ((*second)->Stop(), 0);
  StopProcess(redis, SIGTERM, absl::Seconds(5));
}

// A directory the server cannot create fails the start with the flag's name, before serving.
TEST(OpsEmbeddingCache, AnUnusableDirectoryStopsTheStart) {
  auto server = ServerProcess::Start({"--embedding_cache_dir=/proc/version/cache"});
  ASSERT_FALSE(server.ok());
  EXPECT_NE(std::string(server.status().message()).find("embedding cache directory"),
            std::string::npos)
      << server.status();
}

}  // namespace
}  // namespace speechllm::opstest
