// Misbehaving clients at once (label integration): four threads open 32 seeded streams that cancel
// mid-send, stop reading and then cancel, run into short deadlines, send garbage float PCM or Ogg
// Opus, a second config or an empty message, or behave. Each must end with a status its behaviour
// allows, two healthy clip_a streams open across all of it must end with the offline final, a new
// stream afterwards too, and the server must still run (and drain cleanly at the end of the
// suite). Under scripts/sanitize.sh this is the server's memory-safety check for overlapping
// cancellations and errors.
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/server/harness.h"

namespace speechllm::itest {
namespace {

using client::StreamingClient;
using client::StreamingClientOptions;
using grpc::StatusCode;

constexpr int kThreads = 4;
constexpr int kStreamsPerThread = 8;

class ChaosTest : public SharedServerWithReferenceTest<ChaosTest> {};

enum class Behaviour {
  kCancelWhileSending,
  kStopReadingThenCancel,
  kShortDeadline,
  kGarbageFloatPcm,
  kGarbageOggOpus,
  kSecondConfig,
  kEmptyMessage,
  kWellBehaved,
};
constexpr int kBehaviours = 8;
const char* const kBehaviourNames[kBehaviours] = {
    "cancel while sending", "stop reading, cancel", "short deadline", "garbage float pcm",
    "garbage ogg opus",     "second config",        "empty message",  "well behaved"};

// The status codes a behaviour may end with. RESOURCE_EXHAUSTED (admission) is allowed for every
// one: 32 streams and the healthy ones stay below the default 64, but the check is not about it.
bool Allowed(Behaviour behaviour, StatusCode code) {
  if (code == StatusCode::RESOURCE_EXHAUSTED) return true;
  switch (behaviour) {
    case Behaviour::kCancelWhileSending:
    case Behaviour::kStopReadingThenCancel:
      return code == StatusCode::CANCELLED || code == StatusCode::OK;
    case Behaviour::kShortDeadline:
      return code == StatusCode::DEADLINE_EXCEEDED || code == StatusCode::OK;
    case Behaviour::kGarbageFloatPcm:  // refused at the first NaN or infinity, else transcribed
      return code == StatusCode::INVALID_ARGUMENT || code == StatusCode::OK;
    case Behaviour::kGarbageOggOpus:
    case Behaviour::kSecondConfig:
    case Behaviour::kEmptyMessage:
      return code == StatusCode::INVALID_ARGUMENT;
    case Behaviour::kWellBehaved:
      return code == StatusCode::OK;
  }
  return false;
}

std::string RandomBytes(std::mt19937* rng, size_t n) {
  std::string bytes(n, '\0');
  for (char& c : bytes) c = static_cast<char>((*rng)() & 0xff);
  return bytes;
}

// Runs one stream of `behaviour` (seeded); returns its final status.
grpc::Status RunMisbehaving(v1::StreamingSpeech::StubInterface* stub, Behaviour behaviour,
                            uint32_t seed) {
  std::mt19937 rng(seed);
  const std::string pcm = ClipPcm("clip_a");
  StreamingClientOptions options;
  options.realtime = false;
  options.config = ExactConfig(rng() % 2 == 0, v1::ResultOptions::NONE);
  if (behaviour == Behaviour::kShortDeadline) {
    options.realtime = true;  // 1 s chunks of a 3.4 s clip cannot finish within the deadline
    options.deadline = absl::Milliseconds(50 + rng() % 400);
  } else if (behaviour == Behaviour::kGarbageFloatPcm) {
    options.config.mutable_audio()->set_encoding(v1::AudioFormat::PCM_F32LE);
  } else if (behaviour == Behaviour::kGarbageOggOpus) {
    options.config.mutable_audio()->set_encoding(v1::AudioFormat::OGG_OPUS);
    options.config.mutable_audio()->set_sample_rate_hz(0);
    options.chunk_bytes = 1 + rng() % 4000;
  }
  StreamingClient client(stub, options);
  EXPECT_TRUE(client.Start().ok());
  const size_t cut = 2 * (rng() % (pcm.size() / 2));  // whole samples
  switch (behaviour) {
    case Behaviour::kCancelWhileSending:
      (void)client.SendAudio(pcm);
      absl::SleepFor(absl::Milliseconds(rng() % 300));
      client.Cancel();
      break;
    case Behaviour::kStopReadingThenCancel:
      client.PauseReads();
      (void)client.SendAudio(pcm.substr(0, cut));
      (void)client.Flush();
      absl::SleepFor(absl::Milliseconds(100 + rng() % 200));
      client.Cancel();
      client.ResumeReads();
      break;
    case Behaviour::kShortDeadline:
      (void)client.SendAudio(pcm);
      (void)client.CloseSend();
      break;
    case Behaviour::kGarbageFloatPcm:
    case Behaviour::kGarbageOggOpus:
      (void)client.SendAudio(RandomBytes(&rng, 4 * (1 + rng() % 8000)));
      (void)client.CloseSend();
      break;
    case Behaviour::kSecondConfig: {
      (void)client.SendAudio(pcm.substr(0, cut));
      v1::StreamingRecognizeRequest again;
      *again.mutable_config() = options.config;
      (void)client.SendRaw(again);
      (void)client.SendAudio(pcm.substr(cut));
      (void)client.CloseSend();
      break;
    }
    case Behaviour::kEmptyMessage:
      (void)client.SendAudio(pcm.substr(0, cut));
      (void)client.SendRaw(v1::StreamingRecognizeRequest());
      (void)client.CloseSend();
      break;
    case Behaviour::kWellBehaved:
      (void)client.SendAudio(pcm);
      (void)client.Flush();
      (void)client.KeepAlive();
      (void)client.CloseSend();
      break;
  }
  return Collect(&client, absl::Seconds(60)).status;
}

TEST_F(ChaosTest, MisbehavingClientsNeitherCrashTheServerNorDisturbOthers) {
  HealthyStream first(server_->stub());
  HealthyStream second(server_->NewStub().get());
  std::mutex mu;
  std::map<std::pair<int, int>, int> outcomes;  // (behaviour, status code) -> streams
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([this, t, &mu, &outcomes] {
      // A channel (HTTP/2 connection) per thread: connection-level trouble stays visible.
      auto stub = server_->NewStub();
      for (int k = 0; k < kStreamsPerThread; ++k) {
        const uint32_t seed = static_cast<uint32_t>(t * kStreamsPerThread + k);
        const auto behaviour = static_cast<Behaviour>((seed * 5 + t) % kBehaviours);
        const grpc::Status status = RunMisbehaving(stub.get(), behaviour, seed);
        EXPECT_TRUE(Allowed(behaviour, status.error_code()))
            << kBehaviourNames[static_cast<int>(behaviour)] << " (seed " << seed
            << "): " << Describe(status);
        std::lock_guard<std::mutex> lock(mu);
        ++outcomes[{static_cast<int>(behaviour), status.error_code()}];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const auto& [key, count] : outcomes) {
    std::printf("[chaos] %-22s -> code %2d: %d stream(s)\n", kBehaviourNames[key.first], key.second,
                count);
  }
  first.Finish("32 misbehaving streams (first healthy stream)");
  second.Finish("32 misbehaving streams (second healthy stream, own connection)");
  ExpectServerStillServes(server_.get(), "32 misbehaving streams");
}

}  // namespace
}  // namespace speechllm::itest
