// Received audio behind the resampler (label integration): a stream at 44.1 or 8 kHz reports as
// audio_received every sample its client sent, the ones the resampler still holds (its filter
// delay, 45-125 ms) included. The real speechllm-server (tests/integration/server/harness.h); a
// SEQ_GAP warning, sent before its chunk is decoded, shows what had been received.
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/audio/audio_e2e_util.h"

namespace speechllm::itest {
namespace {

class AudioReceivedE2eTest : public SharedServerTest<AudioReceivedE2eTest> {};

double SecondsOf(const google::protobuf::Duration& d) { return d.seconds() + d.nanos() * 1e-9; }

TEST_F(AudioReceivedE2eTest, ReceivedAudioCountsWhatTheResamplerHolds) {
  for (const int rate_hz : {44100, 8000}) {
    const std::string pcm = streaming::audio_test::Sox(
        ClipPath("clip_a"), absl::StrCat("-r ", rate_hz, " -t raw -e signed-integer -b 16 -L"),
        absl::StrCat("r", rate_hz, ".raw"));
    const size_t sent_bytes = static_cast<size_t>(rate_hz) * 3 / 2 * 2;  // 1.5 s
    ASSERT_GT(pcm.size(), sent_bytes + rate_hz / 5);
    client::StreamingClientOptions options;
    options.realtime = false;
    options.config = ExactConfig(false, v1::ResultOptions::NONE);
    *options.config.mutable_audio() = Format(v1::AudioFormat::PCM_S16LE, rate_hz, 1);
    client::StreamingClient client(server_->stub(), options);
    ASSERT_TRUE(client.Start().ok());
    ASSERT_TRUE(client.SendAudio(pcm.substr(0, sent_bytes)).ok());
    v1::StreamingRecognizeRequest gap;  // the client numbers from 0: a gap, warned at once
    gap.mutable_audio()->set_data(pcm.substr(sent_bytes, rate_hz / 10 * 2));
    gap.mutable_audio()->set_seq(100000);
    ASSERT_TRUE(client.SendRaw(gap).ok());
    ASSERT_TRUE(client.CloseSend().ok());
    const StreamRun run = Collect(&client, absl::Seconds(60));
    ASSERT_TRUE(run.status.ok()) << Describe(run.status);
    double warned_received = -1, total = -1;
    for (const auto& r : run.responses()) {
      if (r.has_warning() && r.warning().code() == v1::Warning::SEQ_GAP) {
        warned_received = SecondsOf(r.audio_received());
      }
      if (r.has_summary()) total = SecondsOf(r.summary().audio_total());
    }
    std::printf("%d Hz: 1.500 s sent before the gap, %.4f s received; %.4f s in all (1.600 sent)\n",
                rate_hz, warned_received, total);
    EXPECT_NEAR(warned_received, 1.5, 0.001) << rate_hz << " Hz";
    EXPECT_NEAR(total, 1.6, 0.001) << rate_hz << " Hz";
  }
}

}  // namespace
}  // namespace speechllm::itest
