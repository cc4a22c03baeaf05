// StreamingClient against the scripted in-process server of scripted_server.h, its audio side:
// pacing, chunk sizes, containers ended at a stop, captured audio. Call side:
// speech_client_calls_test.cc.
#include "client/speech_client.h"

#include <cstdio>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/unit/client/streaming_client_fixture.h"

namespace speechllm::client {
namespace {

using speechllm::v1::AudioFormat;

TEST_F(StreamingClientTest, RealtimePacingOfOneSecondTakesAboutOneSecond) {
  StreamingClient client(stub_.get(), Options(16000, 1, /*realtime=*/true));
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.SendSamples(std::vector<float>(16000, 0.1f)).ok());
  ASSERT_TRUE(client.CloseSend().ok());
  const grpc::Status status = client.Await();
  ASSERT_TRUE(status.ok()) << status.error_message();

  const double elapsed_s = Seconds(client.done_time() - client.start_time());
  EXPECT_GE(elapsed_s, 0.95);
  EXPECT_LE(elapsed_s, 1.8);
  const std::vector<SentChunk> chunks = client.sent_chunks();
  ASSERT_EQ(chunks.size(), 10u);
  for (size_t k = 0; k < chunks.size(); ++k) {
    // A microphone hands chunk k over once (k+1) * 100 ms have been captured.
    EXPECT_GE(Seconds(chunks[k].send_time - client.start_time()), 0.1 * (k + 1) - 0.005) << k;
    EXPECT_EQ(chunks[k].audio_end, absl::Milliseconds(100 * (k + 1)));
  }
  EXPECT_THAT(AudioSizes(), ::testing::Each(3200u));
}

TEST_F(StreamingClientTest, FastModeIsNotPaced) {
  StreamingClient client(stub_.get(), Options(16000, 1, /*realtime=*/false));
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.SendSamples(std::vector<float>(16000 * 2, 0.1f)).ok());
  ASSERT_TRUE(client.CloseSend().ok());
  ASSERT_TRUE(client.Await().ok());
  // Paced, 2 s of audio would take 2 s; unpaced it takes milliseconds (bound for slow CI).
  EXPECT_LT(Seconds(client.done_time() - client.start_time()), 1.0);
  EXPECT_EQ(client.sent_chunks().size(), 20u);
}

TEST_F(StreamingClientTest, ChunksFollowFormatAndChunkMsWhateverTheFeedSizes) {
  // 16 kHz stereo S16LE at 20 ms: 1280-byte chunks; 1.01 s = 50 whole chunks + a 640-byte rest.
  StreamingClient client(stub_.get(), Options(16000, 2, /*realtime=*/false, /*chunk_ms=*/20));
  EXPECT_EQ(client.chunk_size_bytes(), 1280);
  EXPECT_EQ(client.bytes_per_second(), 64000);
  ASSERT_TRUE(client.Start().ok());
  std::string audio(64640, '\0');
  for (size_t i = 0; i < audio.size(); ++i) audio[i] = static_cast<char>(i * 7);
  for (size_t pos = 0; pos < audio.size(); pos += 1000) {
    ASSERT_TRUE(client.SendAudio(audio.substr(pos, 1000)).ok());
  }
  ASSERT_TRUE(client.CloseSend().ok());
  ASSERT_TRUE(client.Await().ok());

  std::vector<size_t> expected(50, 1280);
  expected.push_back(640);
  EXPECT_EQ(AudioSizes(), expected);
  std::string received;
  uint64_t seq = 0;
  for (const auto& request : Requests()) {
    if (!request.has_audio()) continue;
    EXPECT_EQ(request.audio().seq(), seq++);
    received += request.audio().data();
  }
  EXPECT_EQ(received, audio);
  EXPECT_EQ(client.audio_queued(), absl::Milliseconds(1010));
}

// SendAudioNow (a container piped from a recorder) sends what it is given at once, in messages of
// at most the chunk size, instead of waiting for a whole chunk.
TEST_F(StreamingClientTest, SendAudioNowSendsWhatItHasAtOnce) {
  StreamingClientOptions options = Options(16000, 1, /*realtime=*/false);
  options.chunk_bytes = 1000;
  StreamingClient client(stub_.get(), options);
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.SendAudioNow(std::string(300, 'a')).ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (AudioSizes().empty() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(AudioSizes(), std::vector<size_t>{300}) << "300 bytes waited for a whole chunk";
  ASSERT_TRUE(client.SendAudioNow(std::string(2500, 'b')).ok());
  ASSERT_TRUE(client.CloseSend().ok());
  ASSERT_TRUE(client.Await().ok());
  EXPECT_EQ(AudioSizes(), (std::vector<size_t>{300, 1000, 1000, 500}));
}

TEST(StreamingClientSizingTest, ChunkBytesFromEncodingOrOverride) {
  StreamingClientOptions options;
  options.config.mutable_audio()->set_encoding(AudioFormat::PCM_F32LE);
  options.config.mutable_audio()->set_sample_rate_hz(8000);
  StreamingClient f32(nullptr, options);
  EXPECT_EQ(f32.chunk_size_bytes(), 3200);  // 100 ms * 8000 Hz * 4 bytes
  options.chunk_bytes = 777;
  StreamingClient fixed(nullptr, options);
  EXPECT_EQ(fixed.chunk_size_bytes(), 777);
  StreamingClientOptions container;
  container.config.mutable_audio()->set_encoding(AudioFormat::OGG_OPUS);
  StreamingClient opus(nullptr, container);
  EXPECT_EQ(opus.bytes_per_second(), 0);
  EXPECT_EQ(opus.chunk_size_bytes(), 3200);
}

// A chunk_ms of a wide format stays within the server's default max_chunk_bytes (64 KiB), in
// whole frames: 8 channels of 48 kHz PCM_S16LE make 76,800 bytes in 100 ms.
TEST(StreamingClientSizingTest, ChunksStayWithinTheServersChunkLimit) {
  StreamingClientOptions options;
  options.config.mutable_audio()->set_encoding(AudioFormat::PCM_S16LE);
  options.config.mutable_audio()->set_sample_rate_hz(48000);
  options.config.mutable_audio()->set_channels(8);
  StreamingClient wide(nullptr, options);
  EXPECT_LE(wide.chunk_size_bytes(), 65536);
  EXPECT_EQ(wide.chunk_size_bytes() % 16, 0);
  EXPECT_GT(wide.chunk_size_bytes(), 65536 - 16);
}

// StopAudio on a paced stream: raw PCM drops what is held back; Ogg Opus sends on to the end of the
// page begun (a page starts with "OggS" and version 0) and drops the pages after it; another
// container goes out whole, since it cannot end at any byte.
TEST_F(StreamingClientTest, StopAudioEndsAContainerWhereTheServerCanDecodeIt) {
  const std::string page = "OggS" + std::string(1, '\0') + std::string(995, 'p');  // 1000 bytes
  struct Case {
    AudioFormat::Encoding encoding;
    size_t expected_bytes;  // of the 5 pages, with the first 1,500 bytes sent before the stop
  };
  for (const Case& c : {Case{AudioFormat::OGG_OPUS, 2000}, Case{AudioFormat::FLAC, 5000},
                        Case{AudioFormat::PCM_S16LE, 1500}}) {
    SCOPED_TRACE(AudioFormat::Encoding_Name(c.encoding));
    {
      absl::MutexLock lock(&service_.log.mu);
      service_.log.requests.clear();
    }
    StreamingClientOptions options;
    options.config.mutable_audio()->set_encoding(c.encoding);
    options.config.mutable_audio()->set_sample_rate_hz(16000);
    options.bytes_per_second = 5000;  // 100 ms chunks of 500 bytes: the 5 pages take 1 s
    options.chunk_bytes = 500;
    options.realtime = true;
    StreamingClient client(stub_.get(), options);
    ASSERT_TRUE(client.Start().ok());
    std::string pages;
    for (int i = 0; i < 5; ++i) pages += page;
    ASSERT_TRUE(client.SendAudio(pages).ok());
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (AudioSizes().size() < 3 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(2));
    }
    ASSERT_TRUE(client.StopAudio().ok());
    ASSERT_TRUE(client.Await().ok());
    std::string bytes;
    for (const auto& request : Requests()) {
      if (request.has_audio()) bytes += request.audio().data();
    }
    const size_t sent = bytes.size();
    std::printf("%s: %zu of 5000 bytes sent after a stop at 1500\n",
                AudioFormat::Encoding_Name(c.encoding).c_str(), sent);
    EXPECT_EQ(sent, c.expected_bytes);
    EXPECT_EQ(bytes, pages.substr(0, sent));
  }
}

// audio_captured (the loadtest's client lag): paced, the audio a microphone had captured when a
// response came, never less than what was sent; after StopAudio of raw audio, what was sent (the
// dropped rest was never captured; it read 0 when the sent audio was filled in after it).
TEST_F(StreamingClientTest, AudioCapturedFollowsTheClockAndStopsAtTheStop) {
  service_.script.partial_every_n_chunks = 1;
  StreamingClient client(stub_.get(), Options(16000, 1, /*realtime=*/true));
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.SendSamples(std::vector<float>(16000, 0.1f)).ok());  // 1 s, queued at once
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (AudioSizes().size() < 4 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(2));
  ASSERT_TRUE(client.StopAudio().ok());
  ASSERT_TRUE(client.Await().ok());
  const std::vector<ResponseRecord> records = client.responses();
  ASSERT_FALSE(records.empty());
  for (const ResponseRecord& r : records) {
    const absl::Duration since_first_audio = r.since_start;  // audio was queued at Start
    EXPECT_GE(r.audio_captured, r.audio_sent);
    EXPECT_LE(r.audio_captured, since_first_audio + absl::Milliseconds(5));
  }
  const ResponseRecord& last = records.back();  // the final after the half-close
  std::printf("after the stop: %.0f ms captured, %.0f ms sent\n",
              absl::ToDoubleMilliseconds(last.audio_captured),
              absl::ToDoubleMilliseconds(last.audio_sent));
  EXPECT_EQ(last.audio_captured, last.audio_sent);
  EXPECT_GE(last.audio_sent, absl::Milliseconds(400));
  EXPECT_LT(last.audio_sent, absl::Seconds(1));
}

}  // namespace
}  // namespace speechllm::client
