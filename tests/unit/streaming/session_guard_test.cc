// The silence guard of API.md 4.5 in the Session (label unit, FakeModelRunner, which emits text for
// any audio, silence included, as a hallucinating model would): an utterance with less speech than
// silence_guard_min_speech_ms shows no partials and ends with an empty final after a
// SILENCE_SUPPRESSED warning; speech counts only frames above the VAD's thresholds, not its
// hangover; the guard off lets the text through.
#include <vector>

#include "tests/unit/streaming/session_test_fixture.h"

namespace speechllm::streaming {
namespace {

using engine::FakeModelRunner;

std::vector<float> Silence(double seconds) {
  return std::vector<float>(static_cast<size_t>(seconds * 16000), 0.0f);
}

std::vector<float> Concat(std::initializer_list<std::vector<float>> parts) {
  std::vector<float> out;
  for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
  return out;
}

struct GuardRun {
  std::vector<SessionEvent> events;
  int partials = 0;
  int silence_warnings = 0;
  int warning_index = -1, final_index = -1;
  const TranscriptEvent* final = nullptr;
};

class SessionGuardTest : public SessionTest {
 protected:
  // One MANUAL utterance with interim results, token ids on.
  GuardRun Run(const std::vector<float>& audio, int min_speech_ms) {
    RecordingSink sink;
    SessionConfig config = Config(EndpointMode::kManual);
    config.token_ids = true;
    config.partial_interval_ms = 0;
    config.silence_guard_min_speech_ms = min_speech_ms;
    auto session = Start(config, &sink);
    Feed(session.get(), audio, 1600);
    // The end of input closes the utterance, after which partials are dropped: first let the
    // engine decode a partial update and the dispatcher hand it over, so that the checks on
    // partials below see what the guard did, not a race.
    const absl::Time deadline = absl::Now() + absl::Seconds(5);
    while (engine_->stats().tokens_generated == 0 && absl::Now() < deadline)
      absl::SleepFor(absl::Milliseconds(5));
    EXPECT_GT(engine_->stats().tokens_generated, 0);
    absl::SleepFor(absl::Milliseconds(200));
    EXPECT_TRUE(session->FinishInput(absl::Now()).ok());
    EXPECT_TRUE(sink.WaitFinished(absl::Seconds(10)));
    EXPECT_TRUE(sink.status().ok()) << sink.status();
    GuardRun run;
    run.events = sink.events();
    for (size_t i = 0; i < run.events.size(); ++i) {
      const SessionEvent& e = run.events[i];
      if (e.kind == SessionEvent::Kind::kTranscript && !e.transcript.is_final) ++run.partials;
      if (e.kind == SessionEvent::Kind::kWarning &&
          e.warning == SessionEvent::WarningCode::kSilenceSuppressed) {
        ++run.silence_warnings;
        run.warning_index = static_cast<int>(i);
      }
      if (e.kind == SessionEvent::Kind::kTranscript && e.transcript.is_final) {
        run.final_index = static_cast<int>(i);
        run.final = &run.events[i].transcript;
      }
    }
    return run;
  }
};

TEST_F(SessionGuardTest, SilenceGetsAnEmptyFinalAfterAWarning) {
  const GuardRun run = Run(Silence(3.0), /*min_speech_ms=*/100);
  ASSERT_NE(run.final, nullptr);
  EXPECT_TRUE(run.final->token_ids.empty());
  EXPECT_TRUE(run.final->committed_delta.empty());
  EXPECT_EQ(run.final->confidence, 0.0f) << "no text, no confidence";
  EXPECT_EQ(run.partials, 0) << "no text is shown while the utterance has no speech";
  ASSERT_EQ(run.silence_warnings, 1);
  EXPECT_LT(run.warning_index, run.final_index);
  EXPECT_NE(run.events[run.warning_index].message.find("100 ms of speech"), std::string::npos)
      << run.events[run.warning_index].message;
  EXPECT_EQ(run.events.back().summary.tokens_generated, 0);
  EXPECT_EQ(run.events.back().summary.utterances, 1);
}

TEST_F(SessionGuardTest, WithTheGuardOffTheModelsTextForSilenceComesThrough) {
  const GuardRun run = Run(Silence(3.0), /*min_speech_ms=*/0);
  ASSERT_NE(run.final, nullptr);
  // 3 s -> 300 frames -> 75 audio tokens; the fake model's text for them.
  EXPECT_EQ(run.final->token_ids, FakeModelRunner::Greedy(75, 4, 256));
  EXPECT_GT(run.partials, 0);
  EXPECT_EQ(run.silence_warnings, 0);
}

TEST_F(SessionGuardTest, SpeechAnywhereInTheUtteranceKeepsItsText) {
  const GuardRun run = Run(Concat({Silence(1.5), Tone(0.5), Silence(1.0)}), 100);
  ASSERT_NE(run.final, nullptr);
  EXPECT_EQ(run.final->token_ids, FakeModelRunner::Greedy(75, 4, 256));
  EXPECT_EQ(run.silence_warnings, 0);
}

TEST_F(SessionGuardTest, TheHangoverDoesNotCountAsSpeech) {
  // A 50 ms click: 5 loud frames, then 100 ms of VAD hangover that is_speech also covers.
  const std::vector<float> click = Concat({Silence(1.5), Tone(0.05), Silence(1.45)});
  const GuardRun guarded = Run(click, 100);
  ASSERT_NE(guarded.final, nullptr);
  EXPECT_TRUE(guarded.final->token_ids.empty());
  EXPECT_EQ(guarded.silence_warnings, 1);
  const GuardRun lower = Run(click, 50);
  ASSERT_NE(lower.final, nullptr);
  EXPECT_FALSE(lower.final->token_ids.empty());
  EXPECT_EQ(lower.silence_warnings, 0);
}

TEST_F(SessionGuardTest, AnOutOfRangeSettingIsRefused) {
  SessionConfig config = Config(EndpointMode::kManual);
  config.silence_guard_min_speech_ms = -1;
  EXPECT_EQ(config.Validate().code(), absl::StatusCode::kInvalidArgument);
  config.silence_guard_min_speech_ms = 10001;
  EXPECT_NE(config.Validate().message().find("silence_guard_min_speech_ms"), std::string::npos);
}

}  // namespace
}  // namespace speechllm::streaming
