// The audio placeholder id as text (label unit, FakeModelRunner): audio rows are the first tokens
// of a prefill, counted by the scheduler, never found by id. A model that writes the placeholder id
// (the toy model does after 448 audio tokens, as a real one may) keeps streaming, and a committed
// placeholder id in one stream's draft leaves the other streams of the step alone. Raw prompt ids
// must not hold the placeholder: the audio goes between prefix and suffix.
#include <vector>

#include "absl/synchronization/notification.h"
#include "engine/engine.h"
#include "engine/fake_model_runner.h"
#include "gtest/gtest.h"
#include "tests/unit/engine/engine_fixture.h"

namespace speechllm::engine {
namespace {

// The toy model's fifth token after 448 audio tokens is 100 + 7 * 56 + 8 = 500, the tiny
// preset's audio placeholder. Fed back as the next update's draft, it was taken for an audio row
// that was never encoded, and the step failed.
TEST_F(EngineTest, AGeneratedAudioPlaceholderIdIsText) {
  MakeEngine();
  const SequenceId id = Add();
  ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
  ASSERT_TRUE(engine_->SubmitChunk(id, Chunk(0, 0, 896)).ok());  // 448 audio tokens
  std::vector<SequenceOutput> partial;
  for (int wait = 0; wait < 100 && partial.empty(); ++wait)
    partial = engine_->PopOutputs(absl::Milliseconds(50));
  ASSERT_EQ(partial.size(), 1u);
  ASSERT_TRUE(partial[0].status.ok()) << partial[0].status;
  ASSERT_GE(partial[0].token_ids.size(), 5u);
  EXPECT_EQ(partial[0].token_ids[4], engine_->model_config().audio_token_id);
  // The next update verifies that hypothesis as its draft; the final re-reads it.
  ASSERT_TRUE(engine_->SubmitChunk(id, Chunk(0, 896, 900)).ok());
  ASSERT_TRUE(engine_->EndSegment(id, End(0, 1800, 900)).ok());
  const std::vector<SequenceOutput> outputs = Collect(1);
  ASSERT_FALSE(outputs.empty());
  for (const auto& o : outputs) EXPECT_TRUE(o.status.ok()) << o.status;
  EXPECT_EQ(outputs.back().token_ids, FakeModelRunner::Greedy(450, 4, 256));
  engine_->Release(id);
  ExpectAllBlocksFree();
}

// A committed (forced) placeholder id in stream a's final; stream b shares the step.
TEST_F(EngineTest, APlaceholderIdInOneStreamsDraftLeavesTheOtherStreamsAlone) {
  absl::Notification queued;
  const SequenceId blocker = MakeEngineHeldInFirstStep(&queued);
  const SequenceId a = Add(), b = Add();
  ASSERT_TRUE(engine_->StartSegment(a, {0, {}, kSuffix}).ok());
  ASSERT_TRUE(engine_->StartSegment(b, {0, {}, kSuffix}).ok());
  const int64_t placeholder = engine_->model_config().audio_token_id;
  ASSERT_TRUE(engine_->EndSegment(a, End(0, 200, 0, {54, 55, placeholder})).ok());
  ASSERT_TRUE(engine_->EndSegment(b, End(0, 200, 0)).ok());
  queued.Notify();
  for (const auto& o : Collect(2)) {
    EXPECT_TRUE(o.status.ok()) << "stream " << o.id << ": " << o.status;
  }
  for (SequenceId id : {a, b, blocker}) engine_->Release(id);
  ExpectAllBlocksFree();
}

TEST_F(EngineTest, RawPromptIdsMustNotHoldTheAudioPlaceholder) {
  MakeEngine();
  const SequenceId id = Add();
  const int64_t placeholder = engine_->model_config().audio_token_id;
  const absl::Status status = engine_->StartSegment(id, {0, {1, placeholder}, kSuffix});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("audio placeholder"), std::string::npos) << status;
  engine_->Release(id);
}

}  // namespace
}  // namespace speechllm::engine
