// Warning{BACKLOG} (API.md 2.1; label unit, FakeModelRunner): sent once when results lag the
// audio handed to the engine by more than 2 s, again only after the lag has come down; never for
// the whole utterance that exact finals without partials hand over at its end.
#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/synchronization/notification.h"
#include "tests/unit/streaming/session_test_fixture.h"

namespace speechllm::streaming {
namespace {

using engine::FakeModelRunner;

std::vector<std::string> BacklogWarnings(const std::vector<SessionEvent>& events) {
  std::vector<std::string> messages;
  for (const auto& e : events) {
    if (e.kind == SessionEvent::Kind::kWarning && e.warning == SessionEvent::WarningCode::kBacklog)
      messages.push_back(e.message);
  }
  return messages;
}

// Waits until an event says the engine has reflected `seconds` of audio.
bool WaitProcessed(RecordingSink* sink, double seconds) {
  for (int wait = 0; wait < 3000; ++wait) {
    const auto events = sink->events();
    if (!events.empty() && events.back().audio_processed_seconds >= seconds) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

TEST_F(SessionTest, ResultsLaggingByMoreThanTwoSecondsSendOneBacklogWarning) {
  absl::Notification release;
  FakeModelRunner::Options options;
  options.hold_steps_until = &release;  // nothing is answered: every chunk stays owed
  MakeEngine(options);
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kManual);
  config.chunk_ms = 200;
  auto session = Start(config, &sink);
  absl::Cleanup unhold = [&release] {
    if (!release.HasBeenNotified()) release.Notify();
  };
  Feed(session.get(), Tone(1.9), 1600);
  EXPECT_TRUE(BacklogWarnings(sink.events()).empty()) << "1.9 s owed is no backlog yet";
  Feed(session.get(), Tone(4.0), 1600);  // 5.9 s owed: one warning, not one per chunk
  const auto warnings = BacklogWarnings(sink.events());
  ASSERT_EQ(warnings.size(), 1u);
  std::printf("warning: %s\n", warnings[0].c_str());
  EXPECT_NE(warnings[0].find("2.2 s of audio"), std::string::npos) << warnings[0];
  release.Notify();
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(20)));
  EXPECT_TRUE(sink.status().ok()) << sink.status();
  EXPECT_EQ(BacklogWarnings(sink.events()).size(), 1u);
}

// Waits until at most 200 ms of the audio handed over is owed (partials of a tone may repeat the
// same text, so events do not show it; the flow-control bound of 200 ms does).
bool WaitCaughtUp(Session* session) {
  for (int wait = 0; wait < 3000; ++wait) {
    if (!session->ShouldPauseReading()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

// Once the engine has caught up, a new lag is news again.
TEST_F(SessionTest, TheBacklogWarningComesAgainAfterTheEngineCaughtUp) {
  FakeModelRunner::Options slow;
  slow.step_delay = absl::Milliseconds(40);  // 3 s arrive long before they are answered
  MakeEngine(slow);
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kManual);
  config.chunk_ms = 200;
  config.max_buffered_audio_ms = 200;
  auto session = Start(config, &sink);
  Feed(session.get(), Tone(3.0), 1600);
  ASSERT_TRUE(WaitCaughtUp(session.get())) << "the engine never caught up";
  EXPECT_EQ(BacklogWarnings(sink.events()).size(), 1u);
  Feed(session.get(), Tone(3.0), 1600);
  ASSERT_TRUE(WaitCaughtUp(session.get())) << "the engine never caught up";
  EXPECT_EQ(BacklogWarnings(sink.events()).size(), 2u);
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(20)));
  EXPECT_TRUE(sink.status().ok()) << sink.status();
}

// Exact finals without partials hand a whole utterance over at its end: that audio is owed from
// then on, not lagging. A 4 s utterance whose final came before the next one closes is no backlog.
TEST_F(SessionTest, AWholeUtteranceHandedOverAtItsEndIsNoBacklog) {
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kContinuous);
  config.interim_results = false;
  auto session = Start(config, &sink);
  const std::vector<float> silence(16000, 0.0f);
  Feed(session.get(), Tone(4.0), 1600);
  Feed(session.get(), silence, 1600);  // endpoint: the first utterance closes
  ASSERT_TRUE(WaitProcessed(&sink, 4.0));
  Feed(session.get(), Tone(4.0), 1600);
  Feed(session.get(), silence, 1600);
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(20)));
  EXPECT_TRUE(sink.status().ok()) << sink.status();
  EXPECT_EQ(Finals(sink.events()).size(), 2u);
  EXPECT_TRUE(BacklogWarnings(sink.events()).empty());
}

}  // namespace
}  // namespace speechllm::streaming
