// Random session configs and Recognize inputs (label integration): 80 seeded SessionConfigs, half a
// valid config with one to four fields changed and half random throughout (through protobuf
// reflection: extreme and typical integers, enum numbers outside the enums, NaN and infinite
// floats, long and odd strings, out-of-range durations, unknown extension keys), each followed by 1
// s of clip_a and a half-close. Each stream must end OK or with a client-error status (never
// INTERNAL, UNKNOWN, UNAVAILABLE or a hang), and afterwards a normal stream must still give the
// offline final; then 80 seeded Recognize calls with damaged WAVs and random or nearly right audio
// embeddings, under the same rules. Under scripts/sanitize.sh this is the config validation's check
// for overflow and memory errors.
#include <algorithm>
#include <limits>
#include <string>

#include "gtest/gtest.h"
#include "tests/integration/server/harness.h"
#include "tests/integration/server/random_fields.h"

namespace speechllm::itest {
namespace {

using client::StreamingClient;
using client::StreamingClientOptions;
using grpc::StatusCode;

constexpr int kConfigs = 80;

class ConfigFuzzTest : public SharedServerWithReferenceTest<ConfigFuzzTest> {};

TEST_F(ConfigFuzzTest, RandomConfigsAreServedOrRefusedWithAClientError) {
  const std::string second = ClipPcm("clip_a").substr(0, 32000);
  OutcomeTally tally;
  for (int seed = 0; seed < kConfigs; ++seed) {
    RandomFields random(static_cast<uint32_t>(seed));
    v1::SessionConfig config;
    if (seed % 2 == 0) {
      config = ExactConfig(random.Below(2), v1::ResultOptions::NONE);
      for (uint64_t k = 1 + random.Below(4); k > 0; --k) random.ChangeOne(&config, 2);
    } else {
      random.FillAll(&config, 3);
    }
    StreamingClientOptions options;
    options.realtime = false;
    options.config = config;
    options.chunk_bytes = 3200;  // 100 ms of the PCM whatever the config declares
    StreamingClient client(server_->stub(), options);
    ASSERT_TRUE(client.Start().ok());
    (void)client.SendAudio(second);
    (void)client.CloseSend();
    const StreamRun run = Collect(&client, absl::Seconds(30));
    // Every refusal is the server's, with its reason: an echo of a long field in the message
    // once made the trailers exceed the client's metadata limit (a bare RESOURCE_EXHAUSTED).
    tally.Add(run.status, "seed " + std::to_string(seed) + ", config " + config.ShortDebugString());
    if (run.status.ok()) ExpectWellFormed(run.responses(), "seed " + std::to_string(seed));
  }
  tally.Print("fuzz configs");
  EXPECT_GT(tally.count(StatusCode::OK), 0) << "no random config was served";
  EXPECT_GT(tally.count(StatusCode::INVALID_ARGUMENT), 0) << "no random config was refused";
  ExpectServerStillServes(server_.get(), "the random configs");
}

// Recognize with seeded inputs: the WAV clip (sometimes cut or damaged), embeddings with random
// fields (shapes with extreme dimensions, random data), and embeddings shaped [rows, hidden] whose
// rows, hidden size, dtype and byte count are each right or slightly wrong. Each call must answer
// or refuse with a client error and a reason; the server must keep serving.
TEST_F(ConfigFuzzTest, RandomRecognizeInputsAreAnsweredOrRefusedWithAClientError) {
  const std::string wav = ClipWavBytes("clip_a");
  OutcomeTally tally;
  for (int seed = 0; seed < kConfigs; ++seed) {
    RandomFields random(static_cast<uint32_t>(1000 + seed));
    v1::RecognizeRequest request;
    *request.mutable_config() = ExactConfig(false, v1::ResultOptions::NONE);
    request.mutable_config()->mutable_audio()->set_encoding(v1::AudioFormat::ENCODING_UNSPECIFIED);
    if (seed % 3 == 0) {
      std::string audio = wav;
      if (random.Below(2)) audio.resize(random.Below(audio.size()));
      for (uint64_t k = random.Below(3); k > 0 && !audio.empty(); --k)
        audio[random.Below(audio.size())] ^= static_cast<char>(1 + random.Below(255));
      request.set_audio(audio);
    } else if (seed % 3 == 1) {
      random.FillAll(request.mutable_embeddings(), 1);
    } else {
      auto* embeddings = request.mutable_embeddings();
      const int64_t hidden_choices[] = {64, 64, 64, 63, 65, 0, -64};
      const int64_t hidden = hidden_choices[random.Below(7)];
      const int64_t rows = random.Below(2) ? static_cast<int64_t>(1 + random.Below(800))
                                           : random.Integer(std::numeric_limits<int64_t>::min(),
                                                            std::numeric_limits<int64_t>::max());
      embeddings->add_shape(rows);
      embeddings->add_shape(hidden);
      if (random.Below(6) == 0) embeddings->add_shape(1);
      const bool bf16 = random.Below(2);
      embeddings->set_dtype(bf16 ? v1::AudioEmbeddings::BFLOAT16 : v1::AudioEmbeddings::FLOAT32);
      const int64_t element_bytes = (bf16 ? 2 : 4) - (random.Below(8) == 0 ? 1 : 0);
      int64_t bytes = 0;
      if (rows > 0 && rows <= 1000 && hidden > 0) bytes = rows * hidden * element_bytes;
      bytes += static_cast<int64_t>(random.Below(3)) - 1;  // one byte short, exact or over
      std::string data(static_cast<size_t>(std::max<int64_t>(bytes, 0)), '\0');
      for (size_t i = 0; i < data.size(); i += 2) data[i] = static_cast<char>(random.Below(64));
      embeddings->set_data(data);
    }
    v1::RecognizeResponse response;
    const grpc::Status status = RecognizeOn(server_->stub(), request, &response);
    tally.Add(status, "seed " + std::to_string(seed));
  }
  tally.Print("fuzz recognize");
  EXPECT_GT(tally.count(StatusCode::OK), 0) << "no random request was answered";
  EXPECT_GT(tally.count(StatusCode::INVALID_ARGUMENT), 0) << "no random request was refused";
  ExpectServerStillServes(server_.get(), "the random Recognize calls");
}

}  // namespace
}  // namespace speechllm::itest
