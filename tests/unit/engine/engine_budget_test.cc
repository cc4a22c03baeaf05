// The scheduler's per-step encoder budget (EngineConfig::max_step_encoder_positions) on the
// FakeModelRunner (label unit): six exact finals that arrive together spread over steps of at most
// the budget, still give the toy model's greedy finals and free every KV block, whatever their
// prefix (none, or one shared whole); with the default budget the same finals share one step. An
// end that wants no text encodes nothing and takes none of the budget. The token budget
// (max_step_tokens) splits the same finals' prefills into pieces.
#include <algorithm>
#include <cstdio>
#include <set>
#include <vector>

#include "absl/synchronization/notification.h"
#include "engine/engine.h"
#include "engine/fake_model_runner.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/engine_fixture.h"

namespace speechllm::engine {
namespace {

constexpr int kSequences = 6;
constexpr int64_t kValidFrames = 337;  // 169 conv positions, 84 audio tokens

// Starts and ends one segment in each of kSequences sequences (exact finals) at once; returns the
// encoder positions of every step that encoded something.
class EncoderBudgetTest : public EngineTest {
 protected:
  std::vector<int64_t> RunFinals(EngineConfig config,
                                 const std::vector<int64_t>& prefix = kPrefix) {
    // The six starts and ends are posted while the engine holds in its first step. The blocker's
    // prefix prefill (of `prefix`, or of kPrefix when `prefix` is empty) registers the whole
    // blocks the six then share.
    absl::Notification queued;
    const SequenceId blocker =
        MakeEngineHeldInFirstStep(&queued, config, prefix.empty() ? kPrefix : prefix);
    std::vector<SequenceId> ids;
    for (int i = 0; i < kSequences; ++i) {
      ids.push_back(Add());
      EXPECT_TRUE(engine_->StartSegment(ids.back(), {0, prefix, kSuffix}).ok());
    }
    for (SequenceId id : ids) EXPECT_TRUE(engine_->EndSegment(id, End(0, kValidFrames, 0)).ok());
    queued.Notify();
    int finals = 0;
    for (const SequenceOutput& output : Collect(kSequences)) {
      if (!output.is_final) continue;
      ++finals;
      EXPECT_EQ(output.token_ids, FakeModelRunner::Greedy(84, 4, 256));
    }
    EXPECT_EQ(finals, kSequences);
    for (SequenceId id : ids) engine_->Release(id);
    engine_->Release(blocker);
    ExpectAllBlocksFree();
    engine_->Stop();
    return EncodingSteps();
  }
};

TEST_F(EncoderBudgetTest, FinalsArrivingTogetherSpreadOverSteps) {
  EngineConfig config;
  config.max_step_encoder_positions = 400;  // two 169-position re-encodes a step
  const std::vector<int64_t> positions = RunFinals(config);
  ASSERT_FALSE(positions.empty());
  EXPECT_LE(*std::max_element(positions.begin(), positions.end()), 400);
  EXPECT_EQ(positions.size(), 3u);
  int64_t total = 0;
  for (int64_t p : positions) total += p;
  EXPECT_EQ(total, kSequences * 169);
}

// With no prefix, or one all shared (a whole 16-token block), a segment has no prefix step: its
// final used to pass as prefix work, sorted first and charged nothing, and all six re-encodes
// (1,014 positions) went into one step of a 400-position budget.
TEST_F(EncoderBudgetTest, SegmentsWithoutAPrefixToComputeAreBudgetedToo) {
  EngineConfig config;
  config.max_step_encoder_positions = 400;
  std::vector<int64_t> shared_block;
  for (int i = 0; i < 4; ++i)
    shared_block.insert(shared_block.end(), kPrefix.begin(), kPrefix.end());
  for (const std::vector<int64_t>& prefix : {std::vector<int64_t>{}, shared_block}) {
    SCOPED_TRACE(prefix.size());
    const std::vector<int64_t> positions = RunFinals(config, prefix);
    ASSERT_FALSE(positions.empty());
    std::printf("%zu-token prefix: encoder positions per step:", prefix.size());
    for (int64_t p : positions) std::printf(" %lld", static_cast<long long>(p));
    std::printf("\n");
    EXPECT_LE(*std::max_element(positions.begin(), positions.end()), 400);
    EXPECT_EQ(positions.size(), 3u);
  }
}

// Oldest first: a 100-position chunk, an end whose text is not wanted (estimated at a 169-position
// re-encode, encoding nothing), a 250-position chunk. The two chunks fit a 400-position step
// together; the end's estimate used to push the second chunk to the next step.
TEST_F(EncoderBudgetTest, AnEndWithoutTextTakesNoEncoderBudget) {
  absl::Notification queued;
  EngineConfig config;
  config.max_step_encoder_positions = 400;
  const SequenceId blocker = MakeEngineHeldInFirstStep(&queued, config);
  const absl::Time t0 = absl::Now();
  std::vector<SequenceId> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(Add());
    ASSERT_TRUE(engine_->StartSegment(ids.back(), {0, kPrefix, kSuffix}).ok());
  }
  auto first_chunk = Chunk(0, 0, 100);
  first_chunk->arrival_time = t0;
  ASSERT_TRUE(engine_->SubmitChunk(ids[0], std::move(first_chunk)).ok());
  auto silent_end = End(0, kValidFrames, 0);
  silent_end->text_wanted = false;
  silent_end->endpoint_time = t0 + absl::Milliseconds(1);
  ASSERT_TRUE(engine_->EndSegment(ids[1], std::move(silent_end)).ok());
  auto last_chunk = Chunk(0, 0, 250);
  last_chunk->arrival_time = t0 + absl::Milliseconds(2);
  ASSERT_TRUE(engine_->SubmitChunk(ids[2], std::move(last_chunk)).ok());
  queued.Notify();
  // Wait for the two chunks' partials (they come after the encodes) and the empty final.
  std::set<SequenceId> answered;
  for (int wait = 0; wait < 200 && answered.size() < 3; ++wait) {
    for (const SequenceOutput& output : engine_->PopOutputs(absl::Milliseconds(50)))
      answered.insert(output.id);
  }
  EXPECT_EQ(answered.size(), 3u);
  for (SequenceId id : ids) engine_->Release(id);
  engine_->Release(blocker);
  ExpectAllBlocksFree();
  engine_->Stop();
  EXPECT_EQ(EncodingSteps(), std::vector<int64_t>{350});
}

TEST_F(EncoderBudgetTest, TheDefaultBudgetTakesThemInOneStep) {
  const std::vector<int64_t> positions = RunFinals(EngineConfig{});
  EXPECT_EQ(positions, std::vector<int64_t>{kSequences * 169});
}

TEST_F(EncoderBudgetTest, OneSegmentLargerThanTheBudgetStillRuns) {
  EngineConfig config;
  config.max_step_encoder_positions = 100;  // below one re-encode: one a step
  const std::vector<int64_t> positions = RunFinals(config);
  EXPECT_EQ(positions, std::vector<int64_t>(kSequences, 169));
}

// The step's token budget (EngineConfig::max_step_tokens): the six 88-token final prefills (84
// audio tokens and the suffix) run in pieces, so no step passes 64 tokens, and the finals are
// unchanged. Each final used to go whole, one a step: steps of 88 to 93 tokens.
using TokenBudgetTest = EncoderBudgetTest;
TEST_F(TokenBudgetTest, LongFinalsRunInPiecesOfTheStepBudget) {
  EngineConfig config;
  config.max_step_tokens = 64;
  RunFinals(config);
  const std::vector<int64_t>& tokens = runner_->step_tokens();
  ASSERT_FALSE(tokens.empty());
  std::printf("tokens per step:");
  for (int64_t t : tokens) std::printf(" %lld", static_cast<long long>(t));
  std::printf("\n");
  // The one choice token of an item whose other tokens fill the budget exactly may go past it.
  EXPECT_LE(*std::max_element(tokens.begin(), tokens.end()), 64 + 1);
  int64_t total = 0;
  for (int64_t t : tokens) total += t;
  // The blocker's prefix, six final prefills, and one decode step per generated token.
  EXPECT_GE(total, static_cast<int64_t>(kPrefix.size()) + kSequences * 88);
}

// A 30-token prompt prefix in steps of 16 tokens runs in pieces (16 + 14) and the finals are
// unchanged. (The six segments start while the first prefix is still in pieces, so none of them
// finds it registered: each computes its own.)
TEST_F(TokenBudgetTest, APromptPrefixRunsInPieces) {
  EngineConfig config;
  config.max_step_tokens = 16;
  std::vector<int64_t> prefix;
  for (int64_t i = 0; i < 30; ++i) prefix.push_back(1 + i % 7);
  RunFinals(config, prefix);
  const std::vector<int64_t>& tokens = runner_->step_tokens();
  ASSERT_GE(tokens.size(), 3u);
  std::printf("tokens per step:");
  for (int64_t t : tokens) std::printf(" %lld", static_cast<long long>(t));
  std::printf("\n");
  EXPECT_EQ(tokens[0], 16) << "the blocker's prefix in pieces";
  EXPECT_EQ(tokens[1], 16);
  EXPECT_LE(*std::max_element(tokens.begin(), tokens.end()), 16 + 1);
}

TEST(EngineConfigTest, RefusesANonPositiveEncoderBudget) {
  EngineConfig config;
  config.max_step_encoder_positions = 0;
  EXPECT_FALSE(config.Validate().ok());
}

}  // namespace
}  // namespace speechllm::engine
