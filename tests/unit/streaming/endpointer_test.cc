// Endpointer: table-driven VAD patterns -> events per mode (API.md 4.4), utterance start with
// pre-speech padding, and EndpointConfig validation.
#include "streaming/endpointer.h"

#include <cctype>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "streaming/endpoint_config.h"

namespace speechllm::streaming {
namespace {

using ::testing::HasSubstr;
using Event = Endpointer::Event;

EndpointConfig Config(EndpointMode mode, int end_silence_ms, int max_utterance_ms,
                      int speech_start_timeout_ms = 0, int pre_speech_ms = 300) {
  EndpointConfig config;
  config.mode = mode;
  config.end_silence_ms = end_silence_ms;
  config.max_utterance_ms = max_utterance_ms;
  config.speech_start_timeout_ms = speech_start_timeout_ms;
  config.pre_speech_ms = pre_speech_ms;
  return config;
}

// "40_ 30S" = 40 silence frames, then 30 speech frames (10 ms each).
std::vector<bool> Frames(const std::string& pattern) {
  std::vector<bool> frames;
  size_t i = 0;
  while (i < pattern.size()) {
    if (pattern[i] == ' ') {
      ++i;
      continue;
    }
    size_t end = i;
    while (end < pattern.size() && std::isdigit(static_cast<unsigned char>(pattern[end]))) ++end;
    const int count = std::atoi(pattern.substr(i, end - i).c_str());
    frames.insert(frames.end(), count, pattern[end] == 'S');
    i = end + 1;
  }
  return frames;
}

struct Row {
  const char* name;
  EndpointConfig config;
  const char* pattern;
  std::vector<std::pair<int64_t, Event>> events;  // (frame, event); kNone on every other frame
  int64_t first_utterance_start;                  // at the first endpoint; -1: not checked
};

const Row kRows[] = {
    {"silence endpoint after speech, pre-speech reaches back 300 ms",
     Config(EndpointMode::kContinuous, 500, 20000),
     "40_ 30S 60_",
     {{40, Event::kSpeechStarted}, {70, Event::kSpeechEnded}, {119, Event::kEndpointSilence}},
     10},
    {"pre-speech never reaches before the stream start",
     Config(EndpointMode::kContinuous, 500, 20000),
     "5_ 30S 50_",
     {{5, Event::kSpeechStarted}, {35, Event::kSpeechEnded}, {84, Event::kEndpointSilence}},
     0},
    {"a pause shorter than end_silence keeps the utterance",
     Config(EndpointMode::kContinuous, 500, 20000),
     "40_ 30S 49_ 20S 60_",
     {{40, Event::kSpeechStarted},
      {70, Event::kSpeechEnded},
      {119, Event::kSpeechStarted},
      {139, Event::kSpeechEnded},
      {188, Event::kEndpointSilence}},
     10},
    {"max length counts pre-speech; the next utterance starts at the cut",
     Config(EndpointMode::kContinuous, 500, 1000),
     "40_ 200S",
     {{40, Event::kSpeechStarted},
      {109, Event::kEndpointMaxLength},
      {110, Event::kSpeechStarted},
      {209, Event::kEndpointMaxLength},
      {210, Event::kSpeechStarted}},
     10},
    {"manual: no silence endpoint",
     Config(EndpointMode::kManual, 500, 20000),
     "40_ 30S 200_",
     {{40, Event::kSpeechStarted}, {70, Event::kSpeechEnded}},
     -1},
    {"manual: max length from the first frame after Reset",
     Config(EndpointMode::kManual, 500, 1000),
     "40_ 30S 150_",
     {{40, Event::kSpeechStarted},
      {70, Event::kSpeechEnded},
      {99, Event::kEndpointMaxLength},
      {199, Event::kEndpointMaxLength}},
     0},
    {"single utterance: nothing after the first endpoint, even after Reset",
     Config(EndpointMode::kSingleUtterance, 500, 20000),
     "40_ 30S 60_ 30S 60_",
     {{40, Event::kSpeechStarted}, {70, Event::kSpeechEnded}, {119, Event::kEndpointSilence}},
     10},
    {"speech start timeout fires once, speech still opens an utterance",
     Config(EndpointMode::kContinuous, 500, 20000, 500),
     "100_ 10S 60_",
     {{49, Event::kSpeechStartTimeout},
      {100, Event::kSpeechStarted},
      {110, Event::kSpeechEnded},
      {159, Event::kEndpointSilence}},
     70},
    {"no timeout when speech starts in time",
     Config(EndpointMode::kContinuous, 500, 20000, 500),
     "20_ 10S 100_",
     {{20, Event::kSpeechStarted}, {30, Event::kSpeechEnded}, {79, Event::kEndpointSilence}},
     0},
    {"10 ms end silence: the endpoint replaces SpeechEnded",
     Config(EndpointMode::kContinuous, 10, 20000, 0, 0),
     "10_ 5S 5_",
     {{10, Event::kSpeechStarted}, {15, Event::kEndpointSilence}},
     10},
    {"end silence rounds up to whole frames",
     Config(EndpointMode::kContinuous, 15, 20000, 0, 0),
     "10_ 5S 5_",
     {{10, Event::kSpeechStarted}, {15, Event::kSpeechEnded}, {16, Event::kEndpointSilence}},
     10},
    {"manual: a timeout on an endpoint frame comes one frame later",
     Config(EndpointMode::kManual, 500, 500, 500),
     "60_",
     {{49, Event::kEndpointMaxLength}, {50, Event::kSpeechStartTimeout}},
     0},
};

TEST(EndpointerTest, Table) {
  for (const Row& row : kRows) {
    SCOPED_TRACE(row.name);
    ASSERT_TRUE(row.config.Validate().ok()) << row.config.Validate();
    Endpointer endpointer(row.config);
    std::vector<std::pair<int64_t, Event>> events;
    int64_t first_utterance_start = -1;
    const std::vector<bool> frames = Frames(row.pattern);
    for (size_t f = 0; f < frames.size(); ++f) {
      const Event event = endpointer.OnFrame(frames[f]);
      if (event == Event::kNone) continue;
      events.emplace_back(static_cast<int64_t>(f), event);
      if (event == Event::kEndpointSilence || event == Event::kEndpointMaxLength) {
        EXPECT_TRUE(endpointer.ended());
        EXPECT_LE(endpointer.utterance_frames(), row.config.max_utterance_ms / 10);
        if (first_utterance_start < 0) first_utterance_start = endpointer.utterance_start_frame();
        endpointer.Reset();  // as the session does after every endpoint
      }
    }
    std::string got;
    for (const auto& [frame, event] : events) {
      got += std::to_string(frame) + ":" + Endpointer::EventName(event) + " ";
    }
    EXPECT_EQ(events, row.events) << "got " << got;
    if (row.first_utterance_start >= 0) {
      EXPECT_EQ(first_utterance_start, row.first_utterance_start);
    }
  }
}

TEST(EndpointerTest, ResetAfterFlushLimitsPreSpeech) {
  Endpointer endpointer(Config(EndpointMode::kContinuous, 500, 20000));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(endpointer.OnFrame(false), Event::kNone);
  endpointer.Reset();  // a Flush with no speech
  for (int i = 0; i < 10; ++i) EXPECT_EQ(endpointer.OnFrame(false), Event::kNone);
  EXPECT_FALSE(endpointer.in_utterance());
  EXPECT_EQ(endpointer.utterance_frames(), 0);
  EXPECT_EQ(endpointer.OnFrame(true), Event::kSpeechStarted);
  EXPECT_TRUE(endpointer.in_utterance());
  EXPECT_EQ(endpointer.utterance_start_frame(), 100);  // 10 frames back, not 30
  EXPECT_EQ(endpointer.utterance_frames(), 11);
  EXPECT_EQ(endpointer.num_frames(), 111);
}

TEST(EndpointerTest, TrailingSilenceIsCounted) {
  Endpointer endpointer(Config(EndpointMode::kContinuous, 500, 20000));
  endpointer.OnFrame(true);
  for (int i = 0; i < 7; ++i) endpointer.OnFrame(false);
  EXPECT_EQ(endpointer.trailing_silence_frames(), 7);
  EXPECT_FALSE(endpointer.speech_active());
  endpointer.OnFrame(true);
  EXPECT_EQ(endpointer.trailing_silence_frames(), 0);
}

// The VAD's hangover (speech frames that are not loud) is part of the trailing silence: with
// end_silence_ms 500 and a 100 ms hangover the endpoint comes 500 ms after the last loud frame,
// and with 50 ms inside the hangover.
TEST(EndpointerTest, TrailingSilenceCountsFromTheLastLoudFrame) {
  Endpointer endpointer(Config(EndpointMode::kContinuous, 500, 20000));
  for (int f = 0; f < 20; ++f) endpointer.OnFrame(true, true);  // loud frames 0..19
  for (int f = 20; f < 30; ++f) {
    EXPECT_EQ(endpointer.OnFrame(true, false), Event::kNone) << f;  // hangover
  }
  EXPECT_TRUE(endpointer.speech_active());
  EXPECT_EQ(endpointer.trailing_silence_frames(), 10);
  EXPECT_EQ(endpointer.OnFrame(false, false), Event::kSpeechEnded);  // frame 30
  int64_t endpoint_frame = -1;
  for (int f = 31; f < 100 && endpoint_frame < 0; ++f) {
    if (endpointer.OnFrame(false, false) == Event::kEndpointSilence) endpoint_frame = f;
  }
  // 50 frames after the last loud one (frame 19): frame 69.
  EXPECT_EQ(endpoint_frame, 69);

  // An end_silence_ms shorter than the hangover is not stretched to it: 50 ms after the last loud
  // frame, inside the hangover (it used to wait for the VAD's offset, 110 ms).
  Endpointer short_silence(Config(EndpointMode::kContinuous, 50, 20000));
  short_silence.OnFrame(true, true);
  for (int f = 1; f < 5; ++f) EXPECT_EQ(short_silence.OnFrame(true, false), Event::kNone) << f;
  EXPECT_EQ(short_silence.OnFrame(true, false), Event::kEndpointSilence);  // frame 5: 50 ms
  EXPECT_TRUE(short_silence.speech_active());  // the session sends the ENDED
}

// A Flush (Reset) while the VAD is still in its hangover: the hangover's quiet frames end nothing
// and start nothing, so no utterance of silence opens after the flushed one; the next loud frame
// does start one.
TEST(EndpointerTest, TheHangoverAfterAResetStartsNoUtterance) {
  Endpointer endpointer(Config(EndpointMode::kContinuous, 500, 20000));
  for (int f = 0; f < 20; ++f) endpointer.OnFrame(true, true);
  endpointer.OnFrame(true, false);  // the hangover begins
  endpointer.Reset();               // a Flush now
  for (int f = 0; f < 9; ++f) {
    EXPECT_EQ(endpointer.OnFrame(true, false), Event::kNone) << "hangover frame " << f;
  }
  for (int f = 0; f < 100; ++f) EXPECT_EQ(endpointer.OnFrame(false, false), Event::kNone) << f;
  EXPECT_FALSE(endpointer.in_utterance());
  EXPECT_EQ(endpointer.OnFrame(true, true), Event::kSpeechStarted);
  EXPECT_TRUE(endpointer.in_utterance());
}

// Padding as long as the longest utterance is shortened to leave the utterance its onset: with
// max_utterance_ms 300 (30 frames) and 300 ms of padding, an utterance whose onset is frame 50
// reaches back 28 frames, reports SPEECH_STARTED and is cut after 30 frames in all.
TEST(EndpointerTest, PaddingLeavesTheUtteranceItsOnset) {
  Endpointer endpointer(Config(EndpointMode::kContinuous, 500, 300, 0, 300));
  for (int f = 0; f < 50; ++f) endpointer.OnFrame(false, false);
  EXPECT_EQ(endpointer.OnFrame(true, true), Event::kSpeechStarted);
  EXPECT_EQ(endpointer.utterance_start_frame(), 22);
  int64_t cut = -1;
  for (int f = 51; f < 100 && cut < 0; ++f) {
    if (endpointer.OnFrame(true, true) == Event::kEndpointMaxLength) cut = f;
  }
  EXPECT_EQ(cut, 51);  // frames 22..51: 30 frames
}

// A loud frame in the hangover starts the count over.
TEST(EndpointerTest, ALoudFrameInTheHangoverRestartsTheSilence) {
  Endpointer endpointer(Config(EndpointMode::kContinuous, 500, 20000));
  endpointer.OnFrame(true, true);
  for (int f = 0; f < 5; ++f) endpointer.OnFrame(true, false);
  EXPECT_EQ(endpointer.trailing_silence_frames(), 5);
  endpointer.OnFrame(true, true);
  EXPECT_EQ(endpointer.trailing_silence_frames(), 0);
}

void ExpectInvalid(const EndpointConfig& config, const std::string& field) {
  const absl::Status status = config.Validate();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << field;
  EXPECT_THAT(std::string(status.message()), HasSubstr(field)) << status;
}

TEST(EndpointConfigTest, ValidateNamesFieldAndRange) {
  EXPECT_TRUE(EndpointConfig().Validate().ok());
  ExpectInvalid(Config(EndpointMode::kContinuous, 0, 20000),
                "end_silence_ms must be in [10, 10000]");
  ExpectInvalid(Config(EndpointMode::kContinuous, 500, 30010),
                "max_utterance_ms must be in [100, 30000]");
  ExpectInvalid(Config(EndpointMode::kContinuous, 500, 50), "max_utterance_ms");
  ExpectInvalid(Config(EndpointMode::kContinuous, 500, 20000, -1), "speech_start_timeout_ms");
  ExpectInvalid(Config(EndpointMode::kContinuous, 500, 20000, 0, 2500), "pre_speech_ms must be in");
  // The server's 300 ms of padding does not make max_utterance_ms 100-300 invalid.
  EXPECT_TRUE(Config(EndpointMode::kContinuous, 500, 100, 0, 300).Validate().ok());
  ExpectInvalid(Config(static_cast<EndpointMode>(7), 500, 20000), "EndpointConfig.mode");
  EXPECT_TRUE(Config(EndpointMode::kManual, 10, 30000, 86400000, 2000).Validate().ok());
}

TEST(EndpointConfigTest, ToStringNamesEveryField) {
  EXPECT_EQ(Config(EndpointMode::kSingleUtterance, 400, 15000, 5000, 200).ToString(),
            "mode=SINGLE_UTTERANCE end_silence_ms=400 max_utterance_ms=15000 "
            "speech_start_timeout_ms=5000 pre_speech_ms=200");
}

}  // namespace
}  // namespace speechllm::streaming
