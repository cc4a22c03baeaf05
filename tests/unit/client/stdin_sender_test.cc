// The CLI's stdin senders against the scripted in-process server (label unit): PCM piped in at
// once and encoded as Ogg Opus with --realtime goes out paced by the PCM's time, the last pages
// included, counted from the first block's arrival; a stop during a block's wait drops that block.
#include "client/stdin_sender.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "gtest/gtest.h"
#include "tests/unit/client/streaming_client_fixture.h"

namespace speechllm::client {
namespace {

class StdinSenderTest : public StreamingClientTest {
 protected:
  // `seconds` of 16 kHz mono PCM written into a pipe and closed; returns its read end.
  static int PipeOfPcm(double seconds) {
    int fds[2];
    EXPECT_EQ(pipe(fds), 0);
    std::string pcm(static_cast<size_t>(seconds * 32000), '\0');
    for (size_t i = 0; i < pcm.size(); i += 2) pcm[i] = static_cast<char>(i % 200);  // a buzz
    EXPECT_EQ(write(fds[1], pcm.data(), pcm.size()), static_cast<ssize_t>(pcm.size()));
    close(fds[1]);
    return fds[0];
  }
  std::unique_ptr<StreamingClient> StartOpusClient() {
    StreamingClientOptions options = Options(16000, 1, /*realtime=*/false);
    options.config.mutable_audio()->set_encoding(speechllm::v1::AudioFormat::OGG_OPUS);
    options.bytes_per_second = 3000;
    auto client = std::make_unique<StreamingClient>(stub_.get(), options);
    EXPECT_TRUE(client->Start().ok());
    return client;
  }
};

TEST_F(StdinSenderTest, RealtimeOpusIsPacedByThePcmsTimeToTheLastPage) {
  const int fd = PipeOfPcm(1.0);
  PcmStreamReader reader(fd, 16000, 1);
  auto encoder = OggOpusEncoder::Create({});
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  std::unique_ptr<StreamingClient> client = StartOpusClient();
  const Clock::time_point start = Clock::now();
  // Blocks of 500 ms: the encoder's last pages come only from Finish, after the second block.
  const absl::Duration sent = SendStdinAsOpus(&reader, encoder->get(), 500, /*realtime=*/true,
                                              client.get(), [] { return false; });
  ASSERT_TRUE(client->CloseSend().ok());
  EXPECT_TRUE(client->Await().ok());
  close(fd);
  const std::vector<SentChunk> chunks = client->sent_chunks();
  ASSERT_FALSE(chunks.empty());
  const double first_s = Seconds(chunks.front().send_time - start);
  const double last_s = Seconds(chunks.back().send_time - start);
  std::printf("1 s of PCM piped at once: %zu messages, the first at %.3f s, the last at %.3f s\n",
              chunks.size(), first_s, last_s);
  EXPECT_EQ(sent, absl::Seconds(1));
  EXPECT_GE(first_s, 0.45) << "nothing goes out before the first block has played";
  EXPECT_GE(last_s, 0.95) << "the pages of the last block wait for it too";
  EXPECT_LT(last_s, 3.0);
}

TEST_F(StdinSenderTest, AStopDuringABlocksWaitDropsTheBlock) {
  const int fd = PipeOfPcm(2.0);
  PcmStreamReader reader(fd, 16000, 1);
  auto encoder = OggOpusEncoder::Create({});
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  std::unique_ptr<StreamingClient> client = StartOpusClient();
  const Clock::time_point start = Clock::now();
  std::atomic<bool> stopped{false};
  std::thread stopper([&stopped] {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    stopped = true;  // Ctrl-C while the second 500 ms block waits
  });
  const absl::Duration sent = SendStdinAsOpus(&reader, encoder->get(), 500, /*realtime=*/true,
                                              client.get(), [&stopped] { return stopped.load(); });
  const double elapsed_s = Seconds(Clock::now() - start);
  stopper.join();
  ASSERT_TRUE(client->CloseSend().ok());
  EXPECT_TRUE(client->Await().ok());
  close(fd);
  std::printf("stopped at 0.7 s: %.3f s of audio encoded, returned after %.3f s\n",
              absl::ToDoubleSeconds(sent), elapsed_s);
  EXPECT_EQ(sent, absl::Milliseconds(500));
  EXPECT_LT(elapsed_s, 0.95);
}

}  // namespace
}  // namespace speechllm::client
