// Committed text carried into the next utterance's prompt (SessionConfig::carry_context_chars,
// API.md 4.5) in the Session, on the FakeModelRunner (label unit), whose text depends on the
// suffix's length: the second utterance starts only once the first final is out, its prompt comes
// from suffix_with_previous_text called with the end of that final's text, and the model sees it;
// suppressed text is never carried; with carrying off nothing changes.
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "tests/unit/streaming/session_test_fixture.h"

namespace speechllm::streaming {
namespace {

using engine::FakeModelRunner;

struct CarryCall {
  std::string previous_text;
  size_t finals_sent = 0;  // finals the sink had received when the prompt was built
};

class SessionCarryTest : public SessionTest {
 protected:
  // Two MANUAL utterances (`first`, a Flush, then clip_a), finals only, token ids on. The prompt's
  // carried suffix is the plain one plus token 13, and every call is recorded.
  std::vector<SessionEvent> Run(const std::vector<float>& first, int carry_chars,
                                int silence_guard_ms = 0) {
    RecordingSink sink;
    SessionConfig config = Config(EndpointMode::kManual);
    config.interim_results = false;
    config.token_ids = true;
    config.carry_context_chars = carry_chars;
    config.silence_guard_min_speech_ms = silence_guard_ms;
    config.prompt.suffix_with_previous_text = [this, &sink](const std::string& previous) {
      absl::MutexLock lock(&calls_mu_);
      calls_.push_back({previous, Finals(sink.events()).size()});
      return absl::StatusOr<std::vector<int64_t>>(std::vector<int64_t>{502, 10, 11, 12, 13});
    };
    auto session = Start(config, &sink);
    Feed(session.get(), first, 1600);
    EXPECT_TRUE(session->Flush(absl::Now()).ok());
    Feed(session.get(), ClipA(), 1600);
    EXPECT_TRUE(session->FinishInput(absl::Now()).ok());
    EXPECT_TRUE(sink.WaitFinished(absl::Seconds(10)));
    EXPECT_TRUE(sink.status().ok()) << sink.status();
    return sink.events();
  }
  std::vector<CarryCall> calls() {
    absl::MutexLock lock(&calls_mu_);
    return calls_;
  }

  absl::Mutex calls_mu_;
  std::vector<CarryCall> calls_ ABSL_GUARDED_BY(calls_mu_);
};

TEST_F(SessionCarryTest, TheNextUtteranceStartsWithTheEndOfTheFinalBeforeIt) {
  const auto events = Run(ClipA(), /*carry_chars=*/40);
  const auto finals = Finals(events);
  ASSERT_EQ(finals.size(), 2u);
  // clip_a: 84 audio tokens. The fake model counts the suffix among the tokens after the audio,
  // so the longer carried suffix changes the second final.
  EXPECT_EQ(finals[0]->token_ids, FakeModelRunner::Greedy(84, 4, 256));
  EXPECT_EQ(finals[1]->token_ids, FakeModelRunner::Greedy(84, 5, 256));
  const auto made = calls();
  ASSERT_EQ(made.size(), 1u) << "one prompt for the one utterance that follows another";
  EXPECT_EQ(made[0].finals_sent, 1u) << "built before the first final was out";
  const std::string& first_text = finals[0]->committed_delta;
  std::printf("first final: \"%s\"; carried: \"%s\"\n", first_text.c_str(),
              made[0].previous_text.c_str());
  EXPECT_FALSE(made[0].previous_text.empty());
  size_t characters = 0;  // code points: UTF-8 lead bytes
  for (char c : made[0].previous_text) characters += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  std::printf("carried %zu characters in %zu bytes\n", characters, made[0].previous_text.size());
  EXPECT_LE(characters, 40u);
  // The limit counts characters: this final (20 characters, 42 bytes with its U+FFFD) is carried
  // whole; counted in bytes it was cut.
  size_t first_characters = 0;
  for (char c : first_text) first_characters += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  if (first_characters <= 40) {
    EXPECT_EQ(made[0].previous_text, first_text);
  }
  EXPECT_TRUE(absl::EndsWith(first_text, made[0].previous_text));
}

TEST_F(SessionCarryTest, SuppressedTextIsNeverCarried) {
  // The first utterance is silence: the silence guard drops its text, so there is nothing to carry.
  const auto events = Run(std::vector<float>(32000, 0.0f), 40, /*silence_guard_ms=*/100);
  const auto finals = Finals(events);
  ASSERT_EQ(finals.size(), 2u);
  EXPECT_TRUE(finals[0]->token_ids.empty());
  EXPECT_TRUE(calls().empty());
  EXPECT_EQ(finals[1]->token_ids, FakeModelRunner::Greedy(84, 4, 256));
}

TEST_F(SessionCarryTest, WithCarryingOffEveryUtteranceIsAlone) {
  const auto finals_events = Run(ClipA(), /*carry_chars=*/0);
  const auto finals = Finals(finals_events);
  ASSERT_EQ(finals.size(), 2u);
  EXPECT_EQ(finals[1]->token_ids, FakeModelRunner::Greedy(84, 4, 256));
  EXPECT_TRUE(calls().empty());
}

TEST_F(SessionCarryTest, CarryingNeedsAPromptThatTakesText) {
  SessionConfig config = Config(EndpointMode::kManual);
  config.carry_context_chars = 100;
  EXPECT_EQ(config.Validate().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace speechllm::streaming
