// Partial updates from scripted hypotheses (label unit): the engine is held so that only the
// outputs the test hands to Session::OnEngineOutput count. Tentative stability follows API.md 4.3
// (share of the last 4 decodes continuing the commit point with the tentative, times the tail's
// lowest token probability, 0 when unknown), and a partial the rate limit held back goes out once
// its interval has passed, without waiting for another engine output.
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/synchronization/notification.h"
#include "tests/unit/streaming/session_test_fixture.h"

namespace speechllm::streaming {
namespace {

class SessionPartialsTest : public SessionTest {
 protected:
  // A MANUAL LocalAgreement stream whose first utterance is open (0.5 s of tone), on an engine
  // that answers nothing until TearDown.
  std::shared_ptr<Session> StartHeld(RecordingSink* sink, int partial_interval_ms) {
    engine::FakeModelRunner::Options options;
    options.hold_steps_until = &release_;
    MakeEngine(options);
    SessionConfig config = Config(EndpointMode::kManual);
    config.commit_policy = CommitPolicyKind::kLocalAgreement;
    config.partial_interval_ms = partial_interval_ms;
    config.silence_guard_min_speech_ms = 0;
    auto session = Start(config, sink);
    Feed(session.get(), Tone(0.5), 1600);
    return session;
  }
  void TearDown() override {
    if (!release_.HasBeenNotified()) release_.Notify();
    SessionTest::TearDown();
  }
  // `text` with every token at probability 1, the last one at `last_probability`.
  engine::SequenceOutput Output(const Session& session, const std::string& text,
                                float last_probability = 1.0f) {
    auto ids = tokenizer_->Encode(text);
    EXPECT_TRUE(ids.ok());
    engine::SequenceOutput output;
    output.id = session.sequence_id();
    output.segment_index = 0;
    output.token_ids.assign(ids->begin(), ids->end());
    output.token_log_probabilities.assign(output.token_ids.size(), 0.0f);
    if (!output.token_ids.empty())
      output.token_log_probabilities.back() = std::log(last_probability);
    output.audio_end_seconds = 0.5;
    output.input_time = absl::Now();
    return output;
  }
  static std::vector<TranscriptEvent> Partials(const std::vector<SessionEvent>& events) {
    std::vector<TranscriptEvent> out;
    for (const SessionEvent& e : events) {
      if (e.kind == SessionEvent::Kind::kTranscript && !e.transcript.is_final)
        out.push_back(e.transcript);
    }
    return out;
  }

  absl::Notification release_;
};

// It used to be committed tokens / hypothesis tokens (0.667 and 0.5 for the second and third
// updates here), which grows with the committed prefix and says nothing about the tentative tail.
TEST_F(SessionPartialsTest, StabilityFollowsTheLastFourDecodesAndTheTailsProbability) {
  RecordingSink sink;
  auto session = StartHeld(&sink, /*partial_interval_ms=*/0);
  session->OnEngineOutput(Output(*session, "the cat sat"));
  session->OnEngineOutput(Output(*session, "the cat sat"));     // commits "the cat"
  session->OnEngineOutput(Output(*session, "the cat sat on"));  // a new tail
  session->OnEngineOutput(Output(*session, "the cat sat on the", /*last_probability=*/0.5f));
  const std::vector<TranscriptEvent> partials = Partials(sink.events());
  ASSERT_EQ(partials.size(), 4u);
  for (const TranscriptEvent& t : partials) {
    std::printf("committed +\"%s\" tentative \"%s\": stability %.4f\n", t.committed_delta.c_str(),
                t.tentative.c_str(), t.stability);
  }
  EXPECT_NEAR(partials[0].stability, 0.25, 1e-3);  // 1 of 4 decodes so far
  EXPECT_EQ(partials[1].committed_delta, "the cat");
  EXPECT_NEAR(partials[1].stability, 0.50, 1e-3);   // two decodes continue with " sat"
  EXPECT_NEAR(partials[2].stability, 0.25, 1e-3);   // only this one has " sat on"
  EXPECT_NEAR(partials[3].stability, 0.125, 1e-3);  // and a last token at probability 0.5
}

// A tail whose probability is unknown (no log-probabilities, or a NaN from an overflowing logit)
// is not stable: min(1, NaN) used to keep 1, so such a tail scored like a certain one.
TEST_F(SessionPartialsTest, AnUnknownTailProbabilityGivesNoStability) {
  RecordingSink sink;
  auto session = StartHeld(&sink, /*partial_interval_ms=*/0);
  session->OnEngineOutput(Output(*session, "the cat", std::nanf("")));
  engine::SequenceOutput without = Output(*session, "the cat sat");
  without.token_log_probabilities.clear();
  session->OnEngineOutput(without);
  const std::vector<TranscriptEvent> partials = Partials(sink.events());
  ASSERT_EQ(partials.size(), 2u);
  EXPECT_EQ(partials[0].stability, 0.0f);
  EXPECT_EQ(partials[1].stability, 0.0f);
}

// With partial_interval_ms 300, an update that came 0 ms after the first one was held until the
// next engine output, which a client that paused sending never caused.
TEST_F(SessionPartialsTest, AHeldPartialGoesOutWhenItsIntervalHasPassed) {
  RecordingSink sink;
  auto session = StartHeld(&sink, /*partial_interval_ms=*/300);
  const absl::Time start = absl::Now();
  session->OnEngineOutput(Output(*session, "hello there"));
  session->OnEngineOutput(Output(*session, "hello there"));  // commits "hello": held
  ASSERT_EQ(Partials(sink.events()).size(), 1u);
  std::vector<TranscriptEvent> partials;
  for (int i = 0; i < 200 && partials.size() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
    partials = Partials(sink.events());
  }
  const absl::Duration waited = absl::Now() - start;
  ASSERT_EQ(partials.size(), 2u) << "the held partial never went out";
  std::printf("held partial sent after %s: committed +\"%s\"\n",
              absl::FormatDuration(waited).c_str(), partials[1].committed_delta.c_str());
  EXPECT_EQ(partials[1].committed_delta, "hello");
  EXPECT_EQ(partials[1].tentative, " there");
  EXPECT_GE(waited, absl::Milliseconds(300));
  EXPECT_GE(partials[1].since_audio_arrival, absl::Milliseconds(300));
}

// API.md's commit_conflicts counts decodes that disagreed with committed text, not the tokens that
// differed (it used to add the tokens: 5 here).
TEST_F(SessionPartialsTest, CommitConflictsCountDecodesNotTokens) {
  RecordingSink sink;
  auto session = StartHeld(&sink, /*partial_interval_ms=*/0);
  // Each hypothesis grows, so each decode sends a partial that carries the count so far.
  const std::vector<std::pair<std::string, int64_t>> decodes = {
      {"the cat", 3}, {"the cat sat", 0}, {"the cat sat on", 2}};
  for (const auto& [text, conflicting_tokens] : decodes) {
    engine::SequenceOutput output = Output(*session, text);
    output.commit_conflicts = conflicting_tokens;
    session->OnEngineOutput(output);
  }
  const std::vector<SessionEvent> events = sink.events();
  ASSERT_FALSE(events.empty());
  std::printf("commit_conflicts after decodes with 3, 0 and 2 overruled tokens: %lld\n",
              static_cast<long long>(events.back().commit_conflicts));
  EXPECT_EQ(events.back().commit_conflicts, 2);
}

}  // namespace
}  // namespace speechllm::streaming
