// Random message sequences after a valid config (label integration): 60 seeded streams of 5 to 40
// messages, each an audio chunk (any size, odd byte counts and empty included, with sequential,
// repeated, skipped or extreme seq numbers and capture times), a Flush, KeepAlive or EndOfAudio, a
// random RecognitionContext (long prompts, NaN boosts), or now and then a random request of any
// kind. Each stream must end OK and well formed, or with a client error and a reason; afterwards
// a normal stream must still give the offline final. Under scripts/sanitize.sh this checks the
// message path for memory errors and overflow.
#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "tests/integration/server/harness.h"
#include "tests/integration/server/random_fields.h"

namespace speechllm::itest {
namespace {

using client::StreamingClient;
using client::StreamingClientOptions;
using grpc::StatusCode;

constexpr int kStreams = 60;

class MessageFuzzTest : public SharedServerWithReferenceTest<MessageFuzzTest> {};

// One seeded message of the stream; `offset` walks through the clip's PCM, `seq` counts chunks.
v1::StreamingRecognizeRequest RandomMessage(RandomFields* random, const std::string& pcm,
                                            size_t* offset, uint64_t* seq) {
  v1::StreamingRecognizeRequest request;
  // Out of 80: audio 70, Flush 3, KeepAlive 3, EndOfAudio 2, context 1 and any request 1 (the
  // last two usually end the stream: this server has fixed prompt ids, and most random requests
  // are refused, so they stay rare for the streams to go on).
  const uint64_t pick = random->Below(80);
  if (pick < 70) {
    auto* audio = request.mutable_audio();
    const size_t sizes[] = {1, 3, 320, 3200, 3201, 16000, 64000};
    // Empty chunks are refused (AUDIO_DECODE_ERROR): rare, so that most streams go on.
    const size_t size =
        random->Below(30) == 0 ? 0 : std::min(sizes[random->Below(7)], pcm.size() - *offset);
    audio->set_data(pcm.substr(*offset, size));
    *offset = (*offset + size) % (pcm.size() - 1);
    switch (random->Below(6)) {
      case 0:  // skip ahead
        *seq += 1 + random->Below(5);
        break;
      case 1:  // extreme
        *seq = static_cast<uint64_t>(random->Integer(0, std::numeric_limits<int64_t>::max()));
        break;
      case 2:  // repeat
        break;
      default:
        ++*seq;
    }
    audio->set_seq(*seq);
    if (random->Below(3) == 0) {
      audio->set_client_capture_unix_us(random->Integer(std::numeric_limits<int64_t>::min(),
                                                        std::numeric_limits<int64_t>::max()));
    }
  } else if (pick < 73) {
    request.mutable_control()->mutable_flush();
  } else if (pick < 76) {
    request.mutable_control()->mutable_keep_alive();
  } else if (pick < 78) {
    request.mutable_control()->mutable_end_of_audio();
  } else if (pick < 79) {
    random->FillAll(request.mutable_control()->mutable_context(), 2);
  } else {
    random->FillAll(&request, 3);
  }
  return request;
}

TEST_F(MessageFuzzTest, RandomMessagesAfterAValidConfigEndOkOrWithAClientError) {
  const std::string pcm = ClipPcm("clip_a");
  OutcomeTally tally;
  for (int seed = 0; seed < kStreams; ++seed) {
    RandomFields random(static_cast<uint32_t>(5000 + seed));
    StreamingClientOptions options;
    options.realtime = false;
    options.config = ExactConfig(random.Below(2), v1::ResultOptions::NONE);
    const v1::Endpointing::Mode modes[] = {v1::Endpointing::CONTINUOUS, v1::Endpointing::MANUAL,
                                           v1::Endpointing::SINGLE_UTTERANCE};
    options.config.mutable_endpointing()->set_mode(modes[random.Below(3)]);
    options.config.mutable_endpointing()->set_voice_activity_events(random.Below(2));
    StreamingClient client(server_->stub(), options);
    ASSERT_TRUE(client.Start().ok());
    size_t offset = 0;
    uint64_t seq = 0;
    size_t audio_bytes = 0;
    for (uint64_t k = 5 + random.Below(36); k > 0; --k) {
      v1::StreamingRecognizeRequest request = RandomMessage(&random, pcm, &offset, &seq);
      audio_bytes += request.audio().data().size();
      if (!client.SendRaw(std::move(request)).ok()) break;  // the call ended
    }
    // Odd chunk sizes are fine, an odd total is not (half a sample): usually completed, so that
    // most streams get to their finals; the rest check the refusal.
    if (audio_bytes % 2 == 1 && random.Below(4) != 0) {
      v1::StreamingRecognizeRequest last;
      last.mutable_audio()->set_data(std::string(1, '\0'));
      last.mutable_audio()->set_seq(++seq);
      (void)client.SendRaw(std::move(last));
    }
    (void)client.CloseSend();
    const StreamRun run = Collect(&client, absl::Seconds(60));
    tally.Add(run.status, "seed " + std::to_string(seed));
    if (run.status.ok()) ExpectWellFormed(run.responses(), "seed " + std::to_string(seed));
  }
  tally.Print("fuzz messages");
  EXPECT_GT(tally.count(StatusCode::OK), 0) << "no random stream ended OK";
  ExpectServerStillServes(server_.get(), "the random messages");
}

}  // namespace
}  // namespace speechllm::itest
