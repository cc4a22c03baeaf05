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
  std::shared_ptr<Session> StartHeld(RecordingSink* sink, int partial_interval_ms,
                                     CommitRules rules = {}, int max_new_tokens = 0) {
    engine::FakeModelRunner::Options options;
    options.hold_steps_until = &release_;
    MakeEngine(options);
    SessionConfig config = Config(EndpointMode::kManual);
    config.commit_policy = CommitPolicyKind::kLocalAgreement;
    config.partial_interval_ms = partial_interval_ms;
    config.commit_rules = rules;
    config.silence_guard_min_speech_ms = 0;
    if (max_new_tokens > 0) {
      config.max_new_tokens_per_segment = max_new_tokens;
      config.max_new_tokens_per_update = std::min(config.max_new_tokens_per_update, max_new_tokens);
    }
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
  EXPECT_NEAR(partials[1].stability, 0.50, 1e-3);  // two decodes continue with " sat"
  EXPECT_NEAR(partials[2].stability, 0.25, 1e-3);  // " sat" committed: only this one has " on"
  // "the cat sat on" committed: only this decode goes past it, with a last token at 0.5.
  EXPECT_NEAR(partials[3].stability, 0.125, 1e-3);
}

// Behind a holdback (BALANCED: agreement, never the last 5 tokens) the commit point lags the
// decodes, and the shorter decodes before a growing hypothesis continue its tentative text as far
// as they go. The old rule ("starts with the whole current hypothesis") counted only the current
// decode, so a growing partial never got more than 0.25 (seen live: 0.04 to 0.22).
TEST_F(SessionPartialsTest, ShorterDecodesBehindAHoldbackContinueAGrowingTentative) {
  RecordingSink sink;
  CommitRules balanced;
  balanced.holdback_tokens = 5;
  auto session = StartHeld(&sink, /*partial_interval_ms=*/0, balanced);
  std::string text = "one two three four five six seven";
  for (const char* word : {"", " eight", " nine", " ten"}) {
    text += word;
    session->OnEngineOutput(Output(*session, text));
  }
  const std::vector<TranscriptEvent> partials = Partials(sink.events());
  ASSERT_EQ(partials.size(), 4u);
  for (const TranscriptEvent& t : partials) {
    std::printf("committed +\"%s\" tentative \"%s\": stability %.4f\n", t.committed_delta.c_str(),
                t.tentative.c_str(), t.stability);
  }
  // The third and fourth decodes: the one before and the current one go past the commit point
  // (" eight", " nine") and agree; the old rule gave 0.25.
  EXPECT_NEAR(partials[2].stability, 0.5, 1e-3);
  EXPECT_NEAR(partials[3].stability, 0.5, 1e-3);
}

// API.md 2.1: the committed deltas of a stream concatenate to its transcript. Each utterance is
// decoded on its own, and a model that starts a reply without a space ran the last word of one
// utterance into the next ("10:55my birthday"); the first delta of an utterance now carries the
// separator, none where either side is whitespace or in a script without spaces.
TEST_F(SessionPartialsTest, UtterancesJoinWithASpaceInTheCommittedText) {
  RecordingSink sink;
  auto session = StartHeld(&sink, /*partial_interval_ms=*/0);
  const std::vector<std::string> utterances = {
      "set an alarm for 10:55", "my birthday", "好的", "谢谢", " ok", "done", ", right"};
  for (size_t i = 1; i < utterances.size(); ++i) {  // utterance 0 is open: close it, open the next
    ASSERT_TRUE(session->Flush(absl::Now()).ok());
    Feed(session.get(), Tone(0.5), 1600);
  }
  for (size_t i = 0; i < utterances.size(); ++i) {
    engine::SequenceOutput final = Output(*session, utterances[i]);
    final.segment_index = static_cast<int64_t>(i);
    final.is_final = true;
    session->OnEngineOutput(final);
  }
  std::string transcript;
  for (const SessionEvent& e : sink.events()) {
    if (e.kind == SessionEvent::Kind::kTranscript) transcript += e.transcript.committed_delta;
  }
  std::printf("the stream's committed text: \"%s\"\n", transcript.c_str());
  EXPECT_EQ(transcript, "set an alarm for 10:55 my birthday好的谢谢 ok done, right");
}

// The repetition guard and the token limit cut by tokens, so a final they cut can end inside a
// character: its text ends before that character instead of in U+FFFD. A final the model ended
// keeps HF's decoding (U+FFFD). One held engine per test, so each case is a test of its own.
class SessionGuardCutTest : public SessionPartialsTest {
 protected:
  std::string FinalTextEndingInsideACharacter(int64_t repeated_tokens_cut, bool at_token_limit) {
    RecordingSink sink;
    auto encoded = tokenizer_->Encode("hello \xE4\xB8\x80");
    EXPECT_TRUE(encoded.ok());
    const int tokens = encoded.ok() ? static_cast<int>(encoded->size()) - 1 : 0;
    auto session = StartHeld(&sink, /*partial_interval_ms=*/0, {}, at_token_limit ? tokens : 0);
    engine::SequenceOutput final = Output(*session, "hello \xE4\xB8\x80");  // U+4E00
    EXPECT_GT(final.token_ids.size(), 2u);
    final.token_ids.pop_back();  // ends in the character's first bytes
    final.token_log_probabilities.pop_back();
    final.is_final = true;
    final.repeated_tokens_cut = repeated_tokens_cut;
    session->OnEngineOutput(final);
    std::string text;
    for (const SessionEvent& e : sink.events()) {
      if (e.kind == SessionEvent::Kind::kTranscript) text += e.transcript.committed_delta;
    }
    std::printf("%lld tokens cut: \"%s\"\n", static_cast<long long>(repeated_tokens_cut),
                text.c_str());
    return text;
  }
};

TEST_F(SessionGuardCutTest, AFinalTheRepetitionGuardCutEndsOnACharacter) {
  EXPECT_EQ(FinalTextEndingInsideACharacter(7, false), "hello ");
}

// The engine stops a final at max_new_tokens_per_segment without saying so: a final of that many
// tokens was cut (it ended in U+FFFD, and the next utterance's context carried it).
TEST_F(SessionGuardCutTest, AFinalTheTokenLimitCutEndsOnACharacter) {
  EXPECT_EQ(FinalTextEndingInsideACharacter(0, true), "hello ");
}

TEST_F(SessionGuardCutTest, AnUncutFinalKeepsTheReplacementCharacter) {
  EXPECT_EQ(FinalTextEndingInsideACharacter(0, false), "hello \xEF\xBF\xBD");
}

// A decode that went another way after the commit point does not count.
TEST_F(SessionPartialsTest, ADecodeThatDivergesAfterTheCommitPointDoesNotCount) {
  RecordingSink sink;
  auto session = StartHeld(&sink, /*partial_interval_ms=*/0);
  session->OnEngineOutput(Output(*session, "the cat sang"));
  session->OnEngineOutput(Output(*session, "the cat sat"));  // commits "the cat"
  const std::vector<TranscriptEvent> partials = Partials(sink.events());
  ASSERT_EQ(partials.size(), 2u);
  EXPECT_EQ(partials[1].committed_delta, "the cat");
  EXPECT_EQ(partials[1].tentative, " sat");
  EXPECT_NEAR(partials[1].stability, 0.25, 1e-3);  // " sang" is not " sat"
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
