// The Engine on the FakeModelRunner (label unit), continued from engine_test.cc: sequences share
// the whole KV blocks of a common prompt prefix, a fast final without audio leaves other work
// alone, and each step takes decode tokens and the most overdue work first.
#include <map>
#include <vector>

#include "absl/synchronization/notification.h"
#include "engine/engine.h"
#include "engine/fake_model_runner.h"
#include "engine/model/audio_lengths.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/engine_fixture.h"

namespace speechllm::engine {
namespace {

// A 20-token prefix has one whole block of 16: the second sequence shares it from the first, and
// the fake model reads the shared block through its block table, so wrong sharing changes its
// answers. The shared block is not computed again: the runner prefills 16 tokens fewer than for
// two different prefixes of the same length.
TEST_F(EngineTest, SequencesShareTheWholeBlocksOfACommonPrefix) {
  auto prefill_tokens = [&](bool same_prefix) -> int64_t {
    MakeEngine();
    std::vector<int64_t> first_prefix(20), second_prefix(20);
    for (int i = 0; i < 20; ++i) {
      first_prefix[i] = 20 + i;
      second_prefix[i] = same_prefix ? 20 + i : 60 + i;
    }
    const SequenceId first = Add();
    EXPECT_TRUE(engine_->StartSegment(first, {0, first_prefix, kSuffix}).ok());
    EXPECT_TRUE(engine_->SubmitChunk(first, Chunk(0, 0, 50)).ok());
    std::vector<SequenceOutput> partial;  // the first prefix is computed (and registered) by now
    for (int wait = 0; wait < 100 && partial.empty(); ++wait)
      partial = engine_->PopOutputs(absl::Milliseconds(50));
    EXPECT_EQ(partial.size(), 1u);
    const SequenceId second = Add();
    EXPECT_TRUE(engine_->StartSegment(second, {0, second_prefix, kSuffix}).ok());
    EXPECT_TRUE(engine_->EndSegment(second, End(0, 200, 0)).ok());
    EXPECT_TRUE(engine_->EndSegment(first, End(0, 337, 50)).ok());
    std::map<SequenceId, std::vector<int64_t>> finals;
    for (const auto& o : Collect(2)) {
      EXPECT_TRUE(o.status.ok()) << o.status;
      if (o.is_final) finals[o.id] = o.token_ids;
    }
    EXPECT_EQ(finals[first], FakeModelRunner::Greedy(84, 4, 256));
    EXPECT_EQ(finals[second], FakeModelRunner::Greedy(AudioTokenCount(200), 4, 256));
    EXPECT_EQ(engine_->stats().prefix_hits, same_prefix ? 1 : 0);
    engine_->Release(first);
    engine_->Release(second);
    ExpectAllBlocksFree();
    engine_->Stop();
    return runner_->prefill_tokens();
  };
  const int64_t distinct = prefill_tokens(false);
  const int64_t shared = prefill_tokens(true);
  std::printf("prefill tokens: %lld with distinct prefixes, %lld with a shared one\n",
              static_cast<long long>(distinct), static_cast<long long>(shared));
  EXPECT_EQ(distinct - shared, 16) << "the shared block was computed again";
}

TEST_F(EngineTest, AFastFinalWithoutAudioTokensLeavesTheNextSegmentAndOtherStreamsAlone) {
  MakeEngine();
  SequenceConfig fast;
  fast.final_mode = FinalMode::kFast;
  const SequenceId a = Add(fast), b = Add(fast);
  ASSERT_TRUE(engine_->StartSegment(a, {0, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->StartSegment(b, {0, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->SubmitChunk(b, Chunk(0, 0, 50)).ok());
  // Two valid frames: a tail of one conv position and no audio token, so an empty final. Its tail
  // must not be encoded after the runner's state for `a` was reset.
  ASSERT_TRUE(engine_->EndSegment(a, End(0, 2, 0)).ok());
  ASSERT_TRUE(engine_->StartSegment(a, {1, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->SubmitChunk(a, Chunk(1, 0, 50)).ok());
  ASSERT_TRUE(engine_->EndSegment(a, End(1, 100, 50)).ok());
  ASSERT_TRUE(engine_->EndSegment(b, End(0, 100, 50)).ok());
  int finals = 0;
  for (const auto& o : Collect(3)) {
    EXPECT_TRUE(o.status.ok()) << "sequence " << o.id << ": " << o.status;
    finals += o.is_final;
  }
  EXPECT_EQ(finals, 3);
}

TEST_F(EngineTest, DecodeTokensAndTheMostOverdueWorkGoFirst) {
  // Both starts and ends are posted while the engine holds in its first step, so the scheduler
  // sees all four at once.
  absl::Notification queued;
  EngineConfig config;
  config.max_step_tokens = 1;  // one item per step: the order is visible
  const SequenceId blocker = MakeEngineHeldInFirstStep(&queued, config);
  const SequenceId a = Add(), b = Add();
  EXPECT_TRUE(engine_->StartSegment(a, {0, kPrefix, kSuffix}).ok());
  EXPECT_TRUE(engine_->StartSegment(b, {0, kPrefix, kSuffix}).ok());
  auto late = End(0, 100, 0);
  late->endpoint_time = absl::Now();
  auto early = End(0, 100, 0);
  early->endpoint_time = late->endpoint_time - absl::Seconds(1);
  EXPECT_TRUE(engine_->EndSegment(a, std::move(late)).ok());
  EXPECT_TRUE(engine_->EndSegment(b, std::move(early)).ok());
  queued.Notify();
  const auto outputs = Collect(2);
  ASSERT_EQ(outputs.size(), 2u);
  EXPECT_EQ(outputs[0].id, b) << "the segment that ended earlier is finalized first";
  engine_->Release(a);
  engine_->Release(b);
  engine_->Release(blocker);
  ExpectAllBlocksFree();
}

}  // namespace
}  // namespace speechllm::engine
