// OggOpusEncoder (label unit): live audio leaves the encoder within max_page_delay_ms. libopusenc
// also holds audio back for its page decisions (2 s by default), which made `--encode opus` from
// stdin reach the server two seconds late.
#include "client/opus_encoder.h"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace speechllm::client {
namespace {

TEST(OggOpusEncoderTest, LiveAudioLeavesTheEncoderWithinThePageDelay) {
  OggOpusEncoderOptions options;  // 16 kHz mono, 24 kb/s, pages within 100 ms
  auto encoder = OggOpusEncoder::Create(options);
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  std::string bytes;
  std::vector<float> chunk(1600);  // 100 ms
  size_t header_bytes = 0;
  for (int i = 0; i < 15; ++i) {
    for (size_t s = 0; s < chunk.size(); ++s) {
      chunk[s] = 0.3f * std::sin(2 * M_PI * 440.0 * (i * 1600 + s) / 16000.0);
    }
    ASSERT_TRUE((*encoder)->Write(chunk, &bytes).ok());
    if (i == 0) header_bytes = bytes.size();
    if (i % 5 == 4)
      std::printf("after %d ms of audio: %zu bytes out\n", (i + 1) * 100, bytes.size());
  }
  // 1.5 s in: at 24 kb/s (3 KB/s) the pages of at least the first second are out, not only the
  // headers (about 0.8 KB) as with libopusenc's 2 s default decision delay.
  EXPECT_GT(bytes.size(), header_bytes + 3000) << "audio still held back after 1.5 s";
  ASSERT_TRUE((*encoder)->Finish(&bytes).ok());
}

// No audio at all (an empty stdin, a WAV header without data, Ctrl-C before the first sample):
// no stream, not libopusenc's assertion in ope_encoder_drain (the client aborted with 134).
TEST(OggOpusEncoderTest, NoSamplesGiveNoStream) {
  auto encoder = OggOpusEncoder::Create(OggOpusEncoderOptions{});
  ASSERT_TRUE(encoder.ok()) << encoder.status();
  std::string bytes;
  ASSERT_TRUE((*encoder)->Write({}, &bytes).ok());
  ASSERT_TRUE((*encoder)->Finish(&bytes).ok());
  EXPECT_TRUE(bytes.empty()) << bytes.size() << " bytes";
  auto whole = EncodeOggOpus({}, OggOpusEncoderOptions{});
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_TRUE(whole->empty());
}

}  // namespace
}  // namespace speechllm::client
