// How a Session paces and ends a stream (label unit, FakeModelRunner): the backlog that pauses
// reading counts from the utterance handed to the engine, not from the stream's start or its
// stream_offset; SPEECH_START_TIMEOUT ends the stream with OK (with a MANUAL final pending too);
// a Flush with nothing pending ends a SINGLE_UTTERANCE stream; an update the partial rate limit
// held back goes out with the next output instead of waiting for the final; speech events pair up.
#include <cstdio>
#include <string>
#include <tuple>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/synchronization/notification.h"
#include "tests/unit/streaming/session_test_fixture.h"

namespace speechllm::streaming {
namespace {

using engine::FakeModelRunner;

int CountSpeechEvents(const std::vector<SessionEvent>& events, SessionEvent::SpeechEventType type) {
  int count = 0;
  for (const auto& e : events) {
    count += e.kind == SessionEvent::Kind::kSpeechEvent && e.speech_event == type;
  }
  return count;
}

TEST_F(SessionTest, TheBacklogCountsFromTheUtteranceNotFromTheStreamStart) {
  absl::Notification release;
  FakeModelRunner::Options options;
  options.hold_steps_until = &release;  // nothing is processed: only the submitted audio counts
  MakeEngine(options);
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kContinuous);
  config.chunk_ms = 200;
  config.stream_offset_seconds = 60;  // a reconnecting client's timeline
  auto session = Start(config, &sink);
  // A failed assertion must not leave the engine held (the teardown would wait for it).
  absl::Cleanup unhold = [&release] {
    if (!release.HasBeenNotified()) release.Notify();
  };
  // 12 s of silence (more than max_buffered_audio_ms) never reaches the engine.
  Feed(session.get(), std::vector<float>(12 * 16000, 0.0f), 1600);
  Feed(session.get(), Tone(0.6), 1600);
  EXPECT_FALSE(session->ShouldPauseReading()) << "the 72 s before the utterance counted as backlog";
  // The limit itself still holds: 11 s of speech the engine has not reflected.
  Feed(session.get(), Tone(11.0), 1600);
  EXPECT_TRUE(session->ShouldPauseReading());
  release.Notify();
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
  EXPECT_TRUE(sink.status().ok()) << sink.status();
}

// Every SPEECH_STARTED gets one SPEECH_ENDED, and no utterance is made of silence, however the
// utterance ends: an end_silence_ms (50 ms) shorter than the VAD's hangover, a max-length cut in
// the middle of a tone, a Flush 50 ms after a tone (inside the hangover).
TEST_F(SessionTest, SpeechEventsPairUpAndAFlushInTheHangoverOpensNothing) {
  const std::vector<float> silence(8000, 0.0f);  // 0.5 s
  const auto run = [&](SessionConfig config, bool flush_after_tone) {
    config.voice_activity_events = true;
    RecordingSink sink;
    auto session = Start(config, &sink);
    std::vector<float> audio = silence;
    const std::vector<float> tone = Tone(1.5);
    audio.insert(audio.end(), tone.begin(), tone.end());
    Feed(session.get(), audio, 160);
    if (flush_after_tone) {
      Feed(session.get(), std::vector<float>(800, 0.0f), 160);  // 50 ms
      EXPECT_TRUE(session->Flush(absl::Now()).ok());
    }
    Feed(session.get(), silence, 160);
    Feed(session.get(), silence, 160);
    EXPECT_TRUE(session->FinishInput(absl::Now()).ok());
    EXPECT_TRUE(sink.WaitFinished(absl::Seconds(10)));
    return sink.events();
  };
  SessionConfig short_silence = Config(EndpointMode::kContinuous);
  short_silence.endpoint.end_silence_ms = 50;
  SessionConfig cut = Config(EndpointMode::kContinuous);
  cut.endpoint.max_utterance_ms = 1000;
  SessionConfig flushed = Config(EndpointMode::kContinuous);
  for (const auto& [name, config, flush, utterances] :
       {std::make_tuple("end_silence_ms 50", short_silence, false, 1),
        std::make_tuple("max_utterance_ms 1000", cut, false, 2),
        std::make_tuple("Flush 50 ms after the tone", flushed, true, 1)}) {
    const std::vector<SessionEvent> events = run(config, flush);
    const int started = CountSpeechEvents(events, SessionEvent::SpeechEventType::kSpeechStarted);
    const int ended = CountSpeechEvents(events, SessionEvent::SpeechEventType::kSpeechEnded);
    std::printf("%s: %d started, %d ended, %zu finals\n", name, started, ended,
                Finals(events).size());
    EXPECT_EQ(started, utterances) << name;
    EXPECT_EQ(ended, utterances) << name;
    EXPECT_EQ(static_cast<int>(Finals(events).size()), utterances) << name;
    // Each ENDED comes after its STARTED and before the final of its utterance.
    int open = 0;
    for (const SessionEvent& e : events) {
      if (e.kind == SessionEvent::Kind::kSpeechEvent &&
          e.speech_event == SessionEvent::SpeechEventType::kSpeechStarted) {
        EXPECT_EQ(open++, 0) << name << ": two STARTED without an ENDED";
      } else if (e.kind == SessionEvent::Kind::kSpeechEvent &&
                 e.speech_event == SessionEvent::SpeechEventType::kSpeechEnded) {
        EXPECT_EQ(--open, 0) << name << ": an ENDED without a STARTED";
      }
    }
  }
}

// Speech events carry the speech's boundaries: a tone from 0.5 s to 1.5 s starts at 0.5 s and
// ends at 1.5 s. They carried the moment they were decided: 0.51 s, and 1.61 s after the VAD's
// hangover.
TEST_F(SessionTest, SpeechEventOffsetsAreTheSpeechBoundaries) {
  SessionConfig config = Config(EndpointMode::kContinuous);
  config.voice_activity_events = true;
  RecordingSink sink;
  auto session = Start(config, &sink);
  std::vector<float> audio(8000, 0.0f);  // 0.5 s of silence, 1 s of tone, 1 s of silence
  const std::vector<float> tone = Tone(1.0);
  audio.insert(audio.end(), tone.begin(), tone.end());
  audio.insert(audio.end(), 16000, 0.0f);
  Feed(session.get(), audio, 1600);
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
  std::vector<double> started, ended;
  for (const SessionEvent& e : sink.events()) {
    if (e.kind != SessionEvent::Kind::kSpeechEvent) continue;
    if (e.speech_event == SessionEvent::SpeechEventType::kSpeechStarted)
      started.push_back(e.event_offset_seconds);
    if (e.speech_event == SessionEvent::SpeechEventType::kSpeechEnded)
      ended.push_back(e.event_offset_seconds);
  }
  ASSERT_EQ(started.size(), 1u);
  ASSERT_EQ(ended.size(), 1u);
  std::printf("tone 0.5-1.5 s: SPEECH_STARTED at %.3f s, SPEECH_ENDED at %.3f s\n", started[0],
              ended[0]);
  EXPECT_NEAR(started[0], 0.5, 0.005);
  EXPECT_NEAR(ended[0], 1.5, 0.005);
}

// MANUAL, cut at 1 s: the 79 samples after the cut and before a Flush belong before it. They
// were carried into the next utterance, which then started before the Flush.
TEST_F(SessionTest, SamplesBeforeAFlushNeverStartTheNextUtterance) {
  SessionConfig config = Config(EndpointMode::kManual);
  config.endpoint.max_utterance_ms = 1000;
  RecordingSink sink;
  auto session = Start(config, &sink);
  Feed(session.get(), Tone(1.0), 1600);
  Feed(session.get(), std::vector<float>(79, 0.01f), 79);
  ASSERT_TRUE(session->Flush(absl::Now()).ok());
  Feed(session.get(), Tone(1.0), 1600);
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
  const std::vector<SessionEvent> events = sink.events();  // Finals points into it
  const auto finals = Finals(events);
  ASSERT_EQ(finals.size(), 3u);  // the cut, the Flush's empty final, the second second
  for (const auto* f : finals) {
    std::printf("final %.4f-%.4f s%s\n", f->utterance_start_seconds, f->result_end_seconds,
                f->from_flush ? " (Flush)" : "");
  }
  EXPECT_TRUE(finals[1]->from_flush);
  EXPECT_GE(finals[2]->utterance_start_seconds, 16079 / 16000.0);
}

TEST_F(SessionTest, SpeechStartTimeoutEndsTheStreamWithOk) {
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kContinuous);
  config.endpoint.speech_start_timeout_ms = 1000;
  auto session = Start(config, &sink);
  const std::vector<float> silence(3 * 16000, 0.0f);
  int refused = 0;
  for (size_t i = 0; i < silence.size(); i += 1600) {
    refused +=
        !session->AcceptAudio(absl::MakeConstSpan(silence).subspan(i, 1600), absl::Now()).ok();
  }
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(5))) << "the stream went on after the timeout";
  EXPECT_TRUE(sink.status().ok()) << sink.status();
  const auto events = sink.events();
  EXPECT_EQ(CountSpeechEvents(events, SessionEvent::SpeechEventType::kSpeechStartTimeout), 1);
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, SessionEvent::Kind::kSummary);
  EXPECT_TRUE(Finals(events).empty());
  // Audio after the timeout is dropped, not refused: refusing it would end the stream with an
  // error instead of OK.
  EXPECT_EQ(refused, 0);
  EXPECT_NEAR(events.back().summary.audio_total_seconds, 1.0, 0.1);
}

// MANUAL: the timed-out utterance's final is still pending when more audio, a Flush and the end
// of input arrive; the stream still ends with OK (API.md 4.4), not FAILED_PRECONDITION.
TEST_F(SessionTest, SpeechStartTimeoutWithAFinalPendingStillEndsWithOk) {
  absl::Notification release;
  FakeModelRunner::Options options;
  options.hold_steps_until = &release;  // the final cannot come before the later messages
  MakeEngine(options);
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kManual);
  config.endpoint.speech_start_timeout_ms = 500;
  auto session = Start(config, &sink);
  absl::Cleanup unhold = [&release] {
    if (!release.HasBeenNotified()) release.Notify();
  };
  const std::vector<float> silence(16000, 0.0f);
  for (size_t i = 0; i < silence.size(); i += 1600) {
    EXPECT_TRUE(
        session->AcceptAudio(absl::MakeConstSpan(silence).subspan(i, 1600), absl::Now()).ok());
  }
  EXPECT_TRUE(session->Flush(absl::Now()).ok());
  EXPECT_TRUE(session->FinishInput(absl::Now()).ok());
  release.Notify();
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
  EXPECT_TRUE(sink.status().ok()) << sink.status();
  const auto events = sink.events();
  EXPECT_EQ(CountSpeechEvents(events, SessionEvent::SpeechEventType::kSpeechStartTimeout), 1);
  EXPECT_EQ(Finals(events).size(), 1u);  // the open MANUAL utterance, nothing after the timeout
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().kind, SessionEvent::Kind::kSummary);
}

TEST_F(SessionTest, AFlushWithNothingPendingEndsASingleUtterance) {
  RecordingSink sink;
  auto session = Start(Config(EndpointMode::kSingleUtterance), &sink);
  ASSERT_TRUE(session->Flush(absl::Now()).ok());
  Feed(session.get(), Tone(1.0), 1600);  // read and dropped
  // So is a later Flush: it used to answer with a second empty final, of utterance 1.
  ASSERT_TRUE(session->Flush(absl::Now()).ok());
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
  const auto events = sink.events();
  const auto finals = Finals(events);
  ASSERT_EQ(finals.size(), 1u);
  EXPECT_TRUE(finals[0]->committed_delta.empty());
  EXPECT_TRUE(finals[0]->from_flush);
  EXPECT_EQ(CountSpeechEvents(events, SessionEvent::SpeechEventType::kEndOfSingleUtterance), 1);
  EXPECT_EQ(CountSpeechEvents(events, SessionEvent::SpeechEventType::kEndOfUtterance), 1);
}

TEST_F(SessionTest, AnUpdateTheRateLimitHeldBackGoesOutWithTheNextOutput) {
  // The engine is held, and the test plays the engine's partial outputs itself.
  absl::Notification release;
  FakeModelRunner::Options options;
  options.hold_steps_until = &release;
  MakeEngine(options);
  RecordingSink sink;
  SessionConfig config = Config(EndpointMode::kManual);
  config.partial_interval_ms = 300;
  auto session = Start(config, &sink);
  absl::Cleanup unhold = [&release] {
    if (!release.HasBeenNotified()) release.Notify();
  };
  Feed(session.get(), Tone(0.5), 1600);  // utterance 0 is open, with speech
  auto output = [&](const std::string& text) {
    engine::SequenceOutput out;
    out.id = session->sequence_id();
    out.segment_index = 0;
    auto ids = tokenizer_->Encode(text);
    EXPECT_TRUE(ids.ok());
    out.token_ids.assign(ids->begin(), ids->end());
    session->OnEngineOutput(std::move(out));
  };
  auto partials = [&] {
    std::vector<TranscriptEvent> out;
    for (const auto& e : sink.events()) {
      if (e.kind == SessionEvent::Kind::kTranscript && !e.transcript.is_final)
        out.push_back(e.transcript);
    }
    return out;
  };
  output("the cat");
  ASSERT_EQ(partials().size(), 1u);
  output("the cat sat");  // commits "the cat", inside the rate limit: held back
  EXPECT_EQ(partials().size(), 1u);
  absl::SleepFor(absl::Milliseconds(400));
  output("the cat sat");  // nothing new since the last output, but the client still shows A
  const auto seen = partials();
  for (const auto& p : seen) {
    std::printf("partial: committed +\"%s\", tentative \"%s\"\n", p.committed_delta.c_str(),
                p.tentative.c_str());
  }
  ASSERT_EQ(seen.size(), 2u) << "the held-back update waited for the final";
  EXPECT_EQ(seen[1].committed_delta, "the cat");
  EXPECT_EQ(seen[1].tentative, " sat");
  release.Notify();
  ASSERT_TRUE(session->FinishInput(absl::Now()).ok());
  ASSERT_TRUE(sink.WaitFinished(absl::Seconds(10)));
}

}  // namespace
}  // namespace speechllm::streaming
