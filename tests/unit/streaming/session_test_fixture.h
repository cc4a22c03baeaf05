// SessionTest: the fixture of the Session unit tests (label unit): a real Engine with the
// FakeModelRunner, an OutputDispatcher, the tiny model's tokenizer, and a ResultSink that records
// every event. Test-only; the sink is called from the dispatcher thread, the rest from the test.
#ifndef SPEECHLLM_TESTS_UNIT_STREAMING_SESSION_TEST_FIXTURE_H_
#define SPEECHLLM_TESTS_UNIT_STREAMING_SESSION_TEST_FIXTURE_H_

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "engine/fake_model_runner.h"
#include "engine/io/wav_reader.h"
#include "gtest/gtest.h"
#include "streaming/output_dispatcher.h"
#include "streaming/session.h"
#include "tests/test_util.h"

namespace speechllm::streaming {

// A 440 Hz tone at 16 kHz: loud enough for the VAD to call every frame speech.
inline std::vector<float> Tone(double seconds) {
  std::vector<float> s(static_cast<size_t>(seconds * 16000));
  for (size_t i = 0; i < s.size(); ++i) s[i] = 0.3f * std::sin(2 * M_PI * 440.0 * i / 16000.0);
  return s;
}

// The tiny golden model's tokenizer (fails the test when it cannot be read).
inline std::unique_ptr<engine::tokenizer::Tokenizer> GoldenTokenizer() {
  auto tokenizer =
      engine::tokenizer::Tokenizer::FromDirectory(speechllm::testing::GoldenDir() + "/model");
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? std::move(tokenizer).value() : nullptr;
}

class RecordingSink : public ResultSink {
 public:
  void Send(SessionEvent event) override {
    absl::MutexLock lock(&mu_);
    events_.push_back(std::move(event));
  }
  void OnCapacity() override {
    absl::MutexLock lock(&mu_);
    ++capacity_calls_;
  }
  void Finish(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
    finished_ = true;
  }
  bool WaitFinished(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&finished_), timeout);
  }
  std::vector<SessionEvent> events() {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  absl::Status status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  int capacity_calls() {
    absl::MutexLock lock(&mu_);
    return capacity_calls_;
  }

 private:
  absl::Mutex mu_;
  std::vector<SessionEvent> events_;
  absl::Status status_;
  bool finished_ = false;
  int capacity_calls_ = 0;
};

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = GoldenTokenizer();
    ASSERT_NE(tokenizer_, nullptr);
    MakeEngine({});
  }
  void TearDown() override {
    dispatcher_.reset();
    engine_.reset();
  }
  void MakeEngine(engine::FakeModelRunner::Options options, int64_t max_suffix_tokens = 16) {
    dispatcher_.reset();
    engine::EngineConfig config;
    config.max_prefix_tokens = 16;
    config.max_suffix_tokens = max_suffix_tokens;
    engine_ = std::make_unique<engine::Engine>(config,
                                               std::make_unique<engine::FakeModelRunner>(options));
    dispatcher_ = std::make_unique<OutputDispatcher>(engine_.get());
  }
  SessionConfig Config(EndpointMode mode) {
    SessionConfig config;
    config.endpoint.mode = mode;
    config.prompt = PromptConfig{{1, 2, 3, 501}, {502, 10, 11, 12}, nullptr};
    return config;
  }
  // A handle that detaches the session from `sink` when the test drops it, as a call does before
  // its sink goes away: the dispatcher can still hold the session in an output callback then, and
  // a test's sink (declared before the handle) dies right after the handle.
  std::shared_ptr<Session> Start(const SessionConfig& config, RecordingSink* sink) {
    auto session = Session::Create(config, {engine_.get(), &log_mel_, tokenizer_.get()}, sink);
    EXPECT_TRUE(session.ok()) << session.status();
    if (!session.ok()) return nullptr;
    dispatcher_->Register(*session);
    std::shared_ptr<Session> owner = *std::move(session);
    Session* const raw = owner.get();
    return std::shared_ptr<Session>(raw, [owner = std::move(owner)](Session* s) mutable {
      s->Detach();
      owner.reset();
    });
  }
  void Feed(Session* session, const std::vector<float>& samples, size_t piece) {
    for (size_t i = 0; i < samples.size(); i += piece) {
      const size_t n = std::min(piece, samples.size() - i);
      ASSERT_TRUE(
          session->AcceptAudio(absl::MakeConstSpan(samples).subspan(i, n), absl::Now()).ok());
    }
  }
  static std::vector<const TranscriptEvent*> Finals(const std::vector<SessionEvent>& events) {
    std::vector<const TranscriptEvent*> out;
    for (const auto& e : events) {
      if (e.kind == SessionEvent::Kind::kTranscript && e.transcript.is_final)
        out.push_back(&e.transcript);
    }
    return out;
  }

  engine::LogMel log_mel_{engine::FeatureConfig{}};
  std::unique_ptr<engine::tokenizer::Tokenizer> tokenizer_;
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<OutputDispatcher> dispatcher_;
};

inline std::vector<float> ClipA() {
  return *engine::ReadMonoWavFile(speechllm::testing::GoldenDir() + "/clip_a.wav", 16000);
}

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_TESTS_UNIT_STREAMING_SESSION_TEST_FIXTURE_H_
