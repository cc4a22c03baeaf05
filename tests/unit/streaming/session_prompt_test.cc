// Session prompts and partial pacing on the real Engine with the FakeModelRunner and the tiny
// model's tokenizer (label unit): prompt updates from the next utterance on, a context too long
// for the KV cache (a warning, the old prompt kept), and rate-limited partials that keep every
// committed word.
#include "streaming/session.h"

#include "tests/unit/streaming/session_test_fixture.h"

namespace speechllm::streaming {
namespace {

using engine::FakeModelRunner;

TEST_F(SessionTest, PromptUpdatesApplyFromTheNextUtterance) {
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kContinuous);
  config.interim_results = false;
  config.token_ids = true;
  auto session = Start(config, &sink);
  Feed(session.get(), Tone(1.0), 1600);
  Feed(session.get(), std::vector<float>(16000, 0.0f),
       1600);  // endpoint: the first utterance closes
  ASSERT_TRUE(
      session->UpdatePrompt(PromptConfig{{1, 2, 3, 501}, {502, 10, 11, 12, 13}, nullptr}).ok());
  Feed(session.get(), Tone(1.0), 1600);
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
  const auto events = sink.events();
  const auto finals = Finals(events);
  ASSERT_EQ(finals.size(), 2u);
  // The toy model's text depends on the suffix length: 4 tokens, then 5.
  EXPECT_EQ(finals[0]->token_ids.front(), FakeModelRunner::NextToken(1, 4));
  EXPECT_EQ(finals[1]->token_ids.front(), FakeModelRunner::NextToken(1, 5));
}

TEST_F(SessionTest, AContextThatDoesNotFitTheKvCacheIsAWarningAndTheOldPromptStays) {
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kContinuous);
  config.interim_results = false;
  config.token_ids = true;
  // A KV cache of exactly one stream's reservation.
  MakeEngine({}, 256);
  int64_t reserved_blocks = 0;
  {
    RecordingSink probe_sink;
    auto probe = Start(config, &probe_sink);
    reserved_blocks = engine_->stats().kv_blocks_reserved;
    probe->Detach();
  }
  ASSERT_GT(reserved_blocks, 0);
  FakeModelRunner::Options options;
  options.num_kv_blocks = reserved_blocks;
  MakeEngine(options, 256);
  auto session = Start(config, &sink);
  Feed(session.get(), Tone(1.0), 1600);
  Feed(session.get(), std::vector<float>(16000, 0.0f), 1600);
  // 100 more suffix tokens need about 7 more blocks of 16: not there.
  std::vector<int64_t> long_suffix(104, 10);
  long_suffix.front() = 502;
  EXPECT_TRUE(session->UpdatePrompt(PromptConfig{{1, 2, 3, 501}, long_suffix, nullptr}).ok())
      << "a context that does not fit must not end the stream";
  Feed(session.get(), Tone(1.0), 1600);
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
  EXPECT_TRUE(sink.status().ok()) << sink.status();
  const auto events = sink.events();
  int warnings = 0;
  for (const auto& e : events) {
    if (e.kind != SessionEvent::Kind::kWarning) continue;
    EXPECT_EQ(e.warning, SessionEvent::WarningCode::kContextNotApplied);
    EXPECT_NE(e.message.find("previous one stays"), std::string::npos) << e.message;
    std::printf("warning: %s\n", e.message.c_str());
    ++warnings;
  }
  EXPECT_EQ(warnings, 1);
  const auto finals = Finals(events);
  ASSERT_EQ(finals.size(), 2u);
  // Both utterances ran with the 4-token suffix the stream started with.
  EXPECT_EQ(finals[0]->token_ids.front(), FakeModelRunner::NextToken(1, 4));
  EXPECT_EQ(finals[1]->token_ids.front(), FakeModelRunner::NextToken(1, 4));
  EXPECT_EQ(engine_->stats().kv_blocks_reserved, reserved_blocks) << "the reservation grew";
}

TEST_F(SessionTest, PartialsAreRateLimitedWithoutLosingCommittedText) {
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kManual);
  config.chunk_ms = 200;
  config.partial_interval_ms = 60000;  // at most one partial for the whole utterance
  auto session = Start(config, &sink);
  const std::vector<float> clip = ClipA();
  for (size_t i = 0; i < clip.size(); i += 3200) {
    ASSERT_TRUE(session
                    ->AcceptAudio(absl::MakeConstSpan(clip).subspan(
                                      i, std::min<size_t>(3200, clip.size() - i)),
                                  absl::Now())
                    .ok());
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
  int partials = 0;
  std::string committed;
  for (const auto& e : sink.events()) {
    if (e.kind != SessionEvent::Kind::kTranscript) continue;
    partials += !e.transcript.is_final;
    committed += e.transcript.committed_delta;
  }
  EXPECT_LE(partials, 1);
  auto ids = FakeModelRunner::Greedy(84, 4, 256);
  EXPECT_EQ(committed, *tokenizer_->Decode(std::vector<int32_t>(ids.begin(), ids.end()), {true}));
}

}  // namespace
}  // namespace speechllm::streaming
