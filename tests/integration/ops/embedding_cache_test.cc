// The embedding cache in the real server (ARCHITECTURE.md 8, --embedding_cache_dir): Recognize of
// a clip misses and stores its segments' embeddings; the same clip again hits every segment, runs
// no encoder token and gives the same token ids; corrupt entries are misses that are counted and
// rewritten; a restarted server finds its entries; a stream of the same audio hits as well.
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
