// ResultTiming.queue_wait at its source: SequenceOutput::queue_wait is the time from an update's
// oldest input (chunk arrival, endpoint decision or, for an end held for the embedding cache, the
// cache's answer) to the start of the engine step that began it.
#include <cstdio>
#include <vector>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "tests/unit/engine/engine_fixture.h"

namespace speechllm::engine {
namespace {

using QueueWaitTest = EngineTest;

constexpr absl::Duration kHeld = absl::Milliseconds(150);

// Work posted while the engine is busy in another step waits for that step: the partial and the
// final both report at least the time the engine was held, and never more than their whole
// latency minus the engine time they used.
TEST_F(QueueWaitTest, UpdatesPostedDuringABusyStepReportTheWait) {
  absl::Notification release;
  const SequenceId blocker = MakeEngineHeldInFirstStep(&release);
  const SequenceId id = Add();
  ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
  const absl::Time posted = absl::Now();
  auto chunk = Chunk(0, 0, 50);
  chunk->arrival_time = posted;
  ASSERT_TRUE(engine_->SubmitChunk(id, std::move(chunk)).ok());
  auto end = End(0, 101, 50);
  end->endpoint_time = posted;
  ASSERT_TRUE(engine_->EndSegment(id, std::move(end)).ok());
  absl::SleepFor(kHeld);
  release.Notify();
  std::vector<SequenceOutput> outputs = Collect(1);
  const absl::Time received = absl::Now();
  int checked = 0;
  for (const SequenceOutput& output : outputs) {
    if (output.id != id) continue;
    ASSERT_TRUE(output.status.ok()) << output.status;
    std::printf("[queue_wait] %s: %.1f ms (engine held %.0f ms, latency %.1f ms)\n",
                output.is_final ? "final" : "partial",
                absl::ToDoubleMilliseconds(output.queue_wait), absl::ToDoubleMilliseconds(kHeld),
                absl::ToDoubleMilliseconds(received - output.input_time));
    EXPECT_GE(output.queue_wait, kHeld);
    EXPECT_LE(output.queue_wait + output.compute_time, received - output.input_time);
    ++checked;
  }
  EXPECT_GE(checked, 1);
  engine_->Release(id);
  engine_->Release(blocker);
  ExpectAllBlocksFree();
}

// The wait counts from the input's own time, not from when the engine learned of it: a chunk whose
// audio arrived 80 ms before it was posted (the session waiting for a whole chunk) reports those
// 80 ms.
TEST_F(QueueWaitTest, CountsFromTheArrivalOfTheAudio) {
  MakeEngine();
  const SequenceId late = Add();
  const SequenceId prompt = Add();
  ASSERT_TRUE(engine_->StartSegment(late, {0, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->StartSegment(prompt, {0, kPrefix, kSuffix}).ok());
  auto late_chunk = Chunk(0, 0, 50);
  late_chunk->arrival_time = absl::Now() - absl::Milliseconds(80);
  ASSERT_TRUE(engine_->SubmitChunk(late, std::move(late_chunk)).ok());
  auto prompt_chunk = Chunk(0, 0, 50);
  prompt_chunk->arrival_time = absl::Now();
  ASSERT_TRUE(engine_->SubmitChunk(prompt, std::move(prompt_chunk)).ok());
  absl::Duration late_wait = absl::InfiniteDuration(), prompt_wait = absl::InfiniteDuration();
  for (int wait = 0; wait < 200 && (late_wait == absl::InfiniteDuration() ||
                                    prompt_wait == absl::InfiniteDuration());
       ++wait) {
    for (const SequenceOutput& output : engine_->PopOutputs(absl::Milliseconds(50))) {
      ASSERT_FALSE(output.is_final);
      (output.id == late ? late_wait : prompt_wait) = output.queue_wait;
    }
  }
  std::printf("[queue_wait] audio 80 ms old when posted: %.1f ms; posted at once: %.1f ms\n",
              absl::ToDoubleMilliseconds(late_wait), absl::ToDoubleMilliseconds(prompt_wait));
  EXPECT_GE(late_wait, absl::Milliseconds(80));
  EXPECT_LT(late_wait, absl::InfiniteDuration());
  EXPECT_LT(prompt_wait, absl::InfiniteDuration());
  engine_->Release(late);
  engine_->Release(prompt);
  ExpectAllBlocksFree();
}

// An update that takes several queued chunks waits since the oldest of them: a paced stream whose
// chunks pile up behind a busy engine reports how far behind it is, not one chunk's age. Its
// input time stays the newest chunk's (since_audio_arrival).
TEST_F(QueueWaitTest, AnUpdateOfSeveralChunksCountsFromTheOldest) {
  absl::Notification release;
  const SequenceId blocker = MakeEngineHeldInFirstStep(&release);
  SequenceConfig config;
  config.final_mode = FinalMode::kFast;
  const SequenceId id = Add(config);
  ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
  const absl::Time newest = absl::Now();
  const absl::Time oldest = newest - absl::Milliseconds(400);
  auto first = Chunk(0, 0, 50);
  first->arrival_time = oldest;
  auto second = Chunk(0, 50, 100);
  second->arrival_time = newest;
  ASSERT_TRUE(engine_->SubmitChunk(id, std::move(first)).ok());
  ASSERT_TRUE(engine_->SubmitChunk(id, std::move(second)).ok());
  absl::SleepFor(kHeld);
  release.Notify();
  absl::Duration wait = absl::InfiniteDuration();
  absl::Time input_time;
  for (int polls = 0; polls < 200 && wait == absl::InfiniteDuration(); ++polls) {
    for (const SequenceOutput& output : engine_->PopOutputs(absl::Milliseconds(50))) {
      if (output.id != id || wait != absl::InfiniteDuration()) continue;
      ASSERT_TRUE(output.status.ok()) << output.status;
      wait = output.queue_wait;
      input_time = output.input_time;
    }
  }
  std::printf("[queue_wait] two chunks 400 ms apart behind a %.0f ms step: %.1f ms\n",
              absl::ToDoubleMilliseconds(kHeld), absl::ToDoubleMilliseconds(wait));
  EXPECT_GE(wait, absl::Milliseconds(400) + kHeld);
  EXPECT_LT(wait, absl::InfiniteDuration());
  EXPECT_EQ(input_time, newest);
  engine_->Release(id);
  engine_->Release(blocker);
  ExpectAllBlocksFree();
}

// An end held for the embedding cache waited for the cache, not for the engine: its final's
// queue_wait counts from the cache's answer, while its input time stays the endpoint's.
TEST_F(QueueWaitTest, AHeldEndCountsFromTheCacheAnswer) {
  MakeEngine();
  SequenceConfig config;
  config.partial_updates = false;
  const SequenceId id = Add(config);
  ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
  const absl::Time endpoint = absl::Now();
  auto end = End(0, 404, 0);
  end->endpoint_time = endpoint;
  end->await_embeddings = true;
  ASSERT_TRUE(engine_->EndSegment(id, std::move(end)).ok());
  constexpr absl::Duration kLookup = absl::Milliseconds(300);
  absl::SleepFor(kLookup);
  ASSERT_TRUE(engine_->ProvideEmbeddings(id, {0, {}, 0, ""}).ok());  // a miss
  const std::vector<SequenceOutput> outputs = Collect(1);
  ASSERT_EQ(outputs.size(), 1u);
  ASSERT_TRUE(outputs[0].status.ok()) << outputs[0].status;
  std::printf("[queue_wait] final after a %.0f ms cache lookup: %.1f ms (latency %.1f ms)\n",
              absl::ToDoubleMilliseconds(kLookup),
              absl::ToDoubleMilliseconds(outputs[0].queue_wait),
              absl::ToDoubleMilliseconds(absl::Now() - outputs[0].input_time));
  EXPECT_LT(outputs[0].queue_wait, kLookup);
  EXPECT_EQ(outputs[0].input_time, endpoint);
  engine_->Release(id);
  ExpectAllBlocksFree();
}

}  // namespace
}  // namespace speechllm::engine
