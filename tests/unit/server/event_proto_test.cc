// DurationProto and the transcript timing (server/event_proto.h, label unit): seconds as
// google.protobuf.Duration, exact at whole seconds even when the double sits just below one (sums
// of 0.1 s chunks), signs consistent for negative values, clamped to the Duration range; and which
// arrival a transcript's since_audio_arrival counts from.
#include "server/event_proto.h"

#include <cmath>
#include <limits>

#include "absl/time/time.h"

#include "gtest/gtest.h"

namespace speechllm::server {
namespace {

void ExpectDuration(double seconds, int64_t expected_seconds, int32_t expected_nanos) {
  const google::protobuf::Duration d = DurationProto(seconds);
  EXPECT_EQ(d.seconds(), expected_seconds) << seconds;
  EXPECT_EQ(d.nanos(), expected_nanos) << seconds;
}

TEST(DurationProtoTest, SumsOfChunksJustBelowAWholeSecondCarry) {
  double sum = 0;
  for (int chunk = 0; chunk < 10; ++chunk) sum += 0.1;
  ASSERT_LT(sum, 1.0);  // 0.9999999999999999: the case that reported 0 s
  ExpectDuration(sum, 1, 0);
  double three = 0;
  for (int chunk = 0; chunk < 30; ++chunk) three += 0.1;
  ExpectDuration(three, 3, 0);
  for (int chunks = 1; chunks <= 3000; ++chunks) {  // every 0.1 s step up to 5 minutes
    double total = 0;
    for (int k = 0; k < chunks; ++k) total += 0.1;
    const google::protobuf::Duration d = DurationProto(total);
    EXPECT_NEAR(d.seconds() + d.nanos() * 1e-9, chunks * 0.1, 1e-6) << chunks << " chunks";
    ASSERT_LT(d.nanos(), 1000000000);
  }
}

TEST(DurationProtoTest, FractionsAndNegativeValues) {
  ExpectDuration(0, 0, 0);
  ExpectDuration(0.34, 0, 340000000);
  ExpectDuration(2.5, 2, 500000000);
  ExpectDuration(-0.5, 0, -500000000);  // nanos take the sign of the value
  ExpectDuration(-1.25, -1, -250000000);
  ExpectDuration(-0.9999999999999999, -1, 0);
}

TEST(DurationProtoTest, NonFiniteAndHugeValues) {
  ExpectDuration(std::nan(""), 0, 0);
  ExpectDuration(std::numeric_limits<double>::infinity(), 315576000000, 0);
  ExpectDuration(-std::numeric_limits<double>::infinity(), -315576000000, 0);
  ExpectDuration(1e300, 315576000000, 0);
}

// ResultTiming.since_audio_arrival (API.md 5): an utterance's first non-empty update reports the
// first-partial latency, from the speech onset's arrival; later ones the time since the audio that
// triggered them. ApplyResultExtras adds the language and keeps the timing only when asked.
TEST(TranscriptProtoTest, SinceAudioArrivalIsTheFirstPartialLatencyOnTheFirstUpdate) {
  streaming::TranscriptEvent first;
  first.tentative = "hello";
  first.since_audio_arrival = absl::Milliseconds(40);
  first.first_partial_latency = absl::Milliseconds(640);
  first.processing = absl::Milliseconds(12);
  first.queue_wait = absl::Milliseconds(7);
  v1::TranscriptUpdate update;
  ToProto(first, &update);
  EXPECT_EQ(update.timing().since_audio_arrival().nanos(), 640000000);
  EXPECT_EQ(update.timing().processing().nanos(), 12000000);
  EXPECT_EQ(update.timing().queue_wait().nanos(), 7000000);
  streaming::TranscriptEvent later = first;
  later.first_partial_latency.reset();
  ToProto(later, &update);
  EXPECT_EQ(update.timing().since_audio_arrival().nanos(), 40000000);
  ApplyResultExtras({"en-GB", /*timing=*/true}, &update);
  EXPECT_EQ(update.language_code(), "en-GB");
  EXPECT_TRUE(update.has_timing());
  ApplyResultExtras({"en", /*timing=*/false}, &update);
  EXPECT_EQ(update.language_code(), "en");
  EXPECT_FALSE(update.has_timing());
}

// A summary's latency stats are left unset where the stream had no sample (no partial with text,
// no final): zeros read as latencies of 0 ms (the client printed "p50 0.0 ms").
TEST(SummaryProtoTest, LatenciesWithoutSamplesAreUnset) {
  streaming::SessionEvent event;
  event.kind = streaming::SessionEvent::Kind::kSummary;
  event.summary.finalization = {absl::Milliseconds(500), absl::Milliseconds(700),
                                absl::Milliseconds(800)};
  v1::StreamingRecognizeResponse response;
  ToProto(event, &response);
  ASSERT_TRUE(response.has_summary());
  EXPECT_FALSE(response.summary().has_first_partial());
  ASSERT_TRUE(response.summary().has_finalization());
  EXPECT_EQ(response.summary().finalization().p95().nanos(), 700000000);
}

}  // namespace
}  // namespace speechllm::server
