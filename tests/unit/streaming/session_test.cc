// Session on the real Engine with the FakeModelRunner and the tiny model's tokenizer (label unit):
// finals, partials whose committed text is never revised, endpointing into utterances, Flush, too
// short input, backpressure and precomputed embeddings as the input.
#include "streaming/session.h"

#include <cmath>

#include "engine/model/audio_lengths.h"
#include "tests/unit/streaming/session_test_fixture.h"

namespace speechllm::streaming {
namespace {

using engine::FakeModelRunner;

TEST_F(SessionTest, ManualExactWithoutInterimsGivesOneFinal) {
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kManual);
  config.interim_results = false;
  config.token_ids = true;
  auto session = Start(config, &sink);
  Feed(session.get(), ClipA(), 320);
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
  EXPECT_TRUE(sink.status().ok()) << sink.status();
  const auto events = sink.events();
  const auto finals = Finals(events);
  ASSERT_EQ(finals.size(), 1u);
  // clip_a: 53920 samples -> 337 frames -> 84 audio tokens; the whole clip is one utterance.
  EXPECT_EQ(finals[0]->token_ids, FakeModelRunner::Greedy(84, 4, 256));
  EXPECT_FALSE(finals[0]->committed_delta.empty());
  // API.md 3: the final's confidence is the geometric mean of its tokens' probabilities.
  double log_sum = 0;
  for (int64_t token : finals[0]->token_ids) log_sum += FakeModelRunner::LogProbability(token);
  const double expected = std::exp(log_sum / static_cast<double>(finals[0]->token_ids.size()));
  std::printf("final confidence %.6f, expected %.6f\n", finals[0]->confidence, expected);
  EXPECT_NEAR(finals[0]->confidence, expected, 1e-6);
  EXPECT_EQ(events.back().kind, SessionEvent::Kind::kSummary);
  EXPECT_NEAR(events.back().summary.audio_total_seconds, 53920 / 16000.0, 1e-6);
  EXPECT_EQ(events.back().summary.utterances, 1);
  for (const auto& e : events)
    EXPECT_FALSE(e.kind == SessionEvent::Kind::kTranscript && !e.transcript.is_final);
}

TEST_F(SessionTest, CommittedTextIsNeverRevised) {
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kManual);
  config.chunk_ms = 200;
  config.token_ids = true;
  auto session = Start(config, &sink);
  const std::vector<float> clip = ClipA();
  // Real-time-like pacing so that partials come between chunks.
  for (size_t i = 0; i < clip.size(); i += 3200) {
    const size_t n = std::min<size_t>(3200, clip.size() - i);
    ASSERT_TRUE(session->AcceptAudio(absl::MakeConstSpan(clip).subspan(i, n), absl::Now()).ok());
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
  std::string committed;
  int partials = 0;
  std::string final_text;
  for (const auto& e : sink.events()) {
    if (e.kind != SessionEvent::Kind::kTranscript) continue;
    committed += e.transcript.committed_delta;
    if (e.transcript.is_final) {
      final_text = committed;
    } else {
      ++partials;
    }
  }
  EXPECT_GT(partials, 0);
  const std::string expected = *tokenizer_->Decode(
      [] {
        auto ids = FakeModelRunner::Greedy(84, 4, 256);
        return std::vector<int32_t>(ids.begin(), ids.end());
      }(),
      {true});
  // Everything committed along the way plus the final delta is the final transcript.
  std::printf("partials %d, final \"%s\"\n", partials, final_text.c_str());
  EXPECT_EQ(final_text, expected);
}

TEST_F(SessionTest, SilenceSplitsUtterances) {
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kContinuous);
  config.interim_results = false;
  auto session = Start(config, &sink);
  auto tone = [](double seconds) {
    std::vector<float> s(static_cast<size_t>(seconds * 16000));
    for (size_t i = 0; i < s.size(); ++i) s[i] = 0.3f * std::sin(2 * M_PI * 440.0 * i / 16000.0);
    return s;
  };
  std::vector<float> audio(8000, 0.0f);
  for (const auto& part :
       {tone(1.0), std::vector<float>(16000, 0.0f), tone(2.0), std::vector<float>(16000, 0.0f)}) {
    audio.insert(audio.end(), part.begin(), part.end());
  }
  Feed(session.get(), audio, 1600);
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
  EXPECT_TRUE(sink.status().ok());
  const auto events = sink.events();
  const auto finals = Finals(events);
  ASSERT_EQ(finals.size(), 2u);
  // Each utterance: the tone, 300 ms before it and 500 ms of trailing silence after it (the VAD's
  // 100 ms hangover is part of the 500 ms).
  EXPECT_NEAR(finals[0]->utterance_start_seconds, 0.2, 0.02);
  EXPECT_NEAR(finals[0]->result_end_seconds, 2.0, 0.03);
  EXPECT_NEAR(finals[1]->utterance_start_seconds, 2.2, 0.02);
  int end_of_utterance = 0;
  for (const auto& e : events) {
    end_of_utterance += e.kind == SessionEvent::Kind::kSpeechEvent &&
                        e.speech_event == SessionEvent::SpeechEventType::kEndOfUtterance;
  }
  EXPECT_EQ(end_of_utterance, 2);
}

TEST_F(SessionTest, FlushWithNothingPendingGivesAnEmptyFinal) {
  RecordingSink sink;
  auto session = Start(Config(EndpointMode::kContinuous), &sink);
  Feed(session.get(), std::vector<float>(8000, 0.0f), 800);  // silence: no utterance opens
  ASSERT_TRUE(session->Flush(absl::Now()).ok());
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
  const auto events = sink.events();
  const auto finals = Finals(events);
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_TRUE(finals[0]->from_flush);
  EXPECT_TRUE(finals[0]->empty_flush);
  EXPECT_TRUE(finals[0]->committed_delta.empty());
  EXPECT_GE(finals[0]->processing, absl::ZeroDuration());
}

// API.md 5: a final's endpoint_wait runs from the arrival of the last word's audio to the endpoint
// decision, its processing from the decision to the final. Audio arrives in 100 ms pieces paced
// as in real time, starting 10 s ago.
TEST_F(SessionTest, FinalTimingSplitsTheEndpointWaitFromProcessing) {
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kContinuous);
  config.interim_results = false;
  auto session = Start(config, &sink);
  std::vector<float> audio = Tone(1.0);
  audio.resize(audio.size() + 16000, 0.0f);  // 1 s of silence
  const absl::Time t0 = absl::Now() - absl::Seconds(10);
  for (size_t piece = 0; piece * 1600 < audio.size(); ++piece) {
    ASSERT_TRUE(session
                    ->AcceptAudio(absl::MakeConstSpan(audio).subspan(piece * 1600, 1600),
                                  t0 + absl::Milliseconds(100 * piece))
                    .ok());
  }
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
  const auto events = sink.events();
  const auto finals = Finals(events);
  ASSERT_EQ(finals.size(), 1u);
  // The last loud frame arrives with piece 9; 500 ms of trailing silence later (the VAD's 100 ms
  // hangover included) the endpoint falls in piece 14.
  std::printf("endpoint_wait %s, processing %s\n",
              absl::FormatDuration(finals[0]->endpoint_wait).c_str(),
              absl::FormatDuration(finals[0]->processing).c_str());
  EXPECT_EQ(finals[0]->endpoint_wait, absl::Milliseconds(500));
  EXPECT_FALSE(finals[0]->empty_flush);
  EXPECT_FALSE(finals[0]->revises_committed);
  EXPECT_GT(finals[0]->processing, absl::Seconds(8));  // the decision was made 8.5 s ago
  // The summary's finalization latency is the total: endpoint wait + processing.
  ASSERT_EQ(events.back().kind, SessionEvent::Kind::kSummary);
  EXPECT_EQ(events.back().summary.finalization.max,
            finals[0]->endpoint_wait + finals[0]->processing);
}

// API.md 5: the first partial's latency counts from the arrival of the speech onset (the VAD
// start), not from the utterance's start 300 ms of pre-speech earlier.
TEST_F(SessionTest, FirstPartialLatencyCountsFromTheSpeechOnset) {
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kContinuous);
  config.chunk_ms = 200;
  auto session = Start(config, &sink);
  std::vector<float> audio(8000, 0.0f);  // 0.5 s of silence, then the tone
  const std::vector<float> tone = Tone(1.0);
  audio.insert(audio.end(), tone.begin(), tone.end());
  const absl::Time t0 = absl::Now() - absl::Seconds(10);
  const absl::Time fed = absl::Now();
  for (size_t piece = 0; piece * 1600 < audio.size(); ++piece) {
    ASSERT_TRUE(session
                    ->AcceptAudio(absl::MakeConstSpan(audio).subspan(piece * 1600, 1600),
                                  t0 + absl::Milliseconds(100 * piece))
                    .ok());
  }
  // The utterance stays open (no trailing silence) until a partial came, so the engine's outputs
  // are partials whatever the steps it takes.
  auto has_partial = [&sink] {
    for (const SessionEvent& e : sink.events()) {
      if (e.kind == SessionEvent::Kind::kTranscript && !e.transcript.is_final) return true;
    }
    return false;
  };
  for (int wait = 0; wait < 500 && !has_partial(); ++wait) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
  const absl::Time done = absl::Now();
  int with_latency = 0;
  for (const SessionEvent& e : sink.events()) {
    if (e.kind != SessionEvent::Kind::kTranscript || !e.transcript.first_partial_latency) continue;
    ++with_latency;
    // The onset arrives with piece 5 (t0 + 500 ms); the partial was sent between `fed` and `done`.
    const absl::Time sent = t0 + absl::Milliseconds(500) + *e.transcript.first_partial_latency;
    std::printf("first partial latency %s\n",
                absl::FormatDuration(*e.transcript.first_partial_latency).c_str());
    EXPECT_GE(sent, fed);
    EXPECT_LE(sent, done);
    EXPECT_FALSE(e.transcript.tentative.empty() && e.transcript.committed_delta.empty());
  }
  EXPECT_EQ(with_latency, 1);
}

TEST_F(SessionTest, TooShortStreamIsInvalid) {
  RecordingSink sink;
  auto session = Start(Config(EndpointMode::kManual), &sink);
  Feed(session.get(), std::vector<float>(300, 0.1f), 300);
  const absl::Status status = session->FinishInput(absl::Now());
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("too little audio"), absl::string_view::npos);
}

// The same samples answered by a Flush first (its empty final came): the end of input has nothing
// left to refuse and the stream ends OK.
TEST_F(SessionTest, TooShortAudioAFlushAnsweredIsNoError) {
  RecordingSink sink;
  auto session = Start(Config(EndpointMode::kManual), &sink);
  Feed(session.get(), std::vector<float>(300, 0.1f), 300);
  ASSERT_TRUE(session->Flush(absl::Now()).ok());
  EXPECT_TRUE(session->FinishInput(absl::Now()).ok());
  // Audio after the Flush is judged again (the stream's 200 samples: under one token's 321).
  RecordingSink second_sink;
  auto second = Start(Config(EndpointMode::kManual), &second_sink);
  Feed(second.get(), std::vector<float>(100, 0.1f), 100);
  ASSERT_TRUE(second->Flush(absl::Now()).ok());
  Feed(second.get(), std::vector<float>(100, 0.1f), 100);
  EXPECT_EQ(second->FinishInput(absl::Now()).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SessionTest, BacklogPausesReadingUntilTheEngineCatchesUp) {
  FakeModelRunner::Options slow;
  slow.step_delay = absl::Milliseconds(30);
  MakeEngine(slow);
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kManual);
  config.chunk_ms = 200;
  config.max_buffered_audio_ms = 400;
  auto session = Start(config, &sink);
  Feed(session.get(), ClipA(), 16000);  // 3.4 s at once: far more than 400 ms of backlog
  EXPECT_TRUE(session->ShouldPauseReading());
  for (int wait = 0; wait < 200 && sink.capacity_calls() == 0; ++wait)
    absl::SleepFor(absl::Milliseconds(10));
  EXPECT_GE(sink.capacity_calls(), 1);
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(20)));
  EXPECT_TRUE(sink.status().ok());
}

// A server limit ends the stream only after the final of the audio already received (finals first).
TEST_F(SessionTest, FinishEarlySendsTheFinalsFirst) {
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kManual);
  config.interim_results = false;
  config.token_ids = true;
  auto session = Start(config, &sink);
  Feed(session.get(), ClipA(), 1600);
  session->FinishEarly(absl::OutOfRangeError("maximum stream duration reached"), absl::Now());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
  EXPECT_EQ(sink.status().code(), absl::StatusCode::kOutOfRange);
  const auto events = sink.events();
  const auto finals = Finals(events);
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_EQ(finals[0]->token_ids, FakeModelRunner::Greedy(84, 4, 256));
  EXPECT_EQ(events.back().kind, SessionEvent::Kind::kSummary);
}

// Precomputed embeddings are the whole input: one final over their rows (40 ms each), in either
// final mode, with interim results on or off; after audio they are refused.
TEST_F(SessionTest, EmbeddingsAreOneUtteranceWithoutTheFrontend) {
  const int64_t hidden = engine_->model_config().text.hidden_size;
  for (const bool fast : {false, true}) {
    SCOPED_TRACE(fast ? "fast" : "exact");
    RecordingSink sink;
    SessionConfig config = Config(EndpointMode::kContinuous);
    config.interim_results = fast;
    config.final_mode = fast ? engine::FinalMode::kFast : engine::FinalMode::kExact;
    config.token_ids = true;
    auto session = Start(config, &sink);
    ASSERT_TRUE(
        session->AcceptEmbeddings(std::vector<float>(30 * hidden, 0.25f), 30, absl::Now()).ok());
    ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
    EXPECT_TRUE(sink.status().ok()) << sink.status();
    const auto events = sink.events();
    const auto finals = Finals(events);
    ASSERT_EQ(finals.size(), 1u);
    EXPECT_EQ(finals[0]->token_ids, FakeModelRunner::Greedy(30, 4, 256));
    EXPECT_EQ(events.back().kind, SessionEvent::Kind::kSummary);
    EXPECT_NEAR(events.back().summary.audio_total_seconds, 30 * 0.04, 1e-9);
    EXPECT_EQ(events.back().summary.utterances, 1);
    EXPECT_EQ(session->AcceptEmbeddings({}, 0, absl::Now()).code(),
              absl::StatusCode::kFailedPrecondition);
  }
  RecordingSink sink;
  auto session = Start(Config(EndpointMode::kManual), &sink);
  Feed(session.get(), ClipA(), 1600);
  EXPECT_EQ(session->AcceptEmbeddings(std::vector<float>(hidden, 0.0f), 1, absl::Now()).code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace speechllm::streaming
