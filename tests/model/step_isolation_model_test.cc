// A failed step on the real runner (label model): TorchModelRunner puts back the encoder state of
// the step's sequences, and ExecuteIsolatingFailures fails only the sequence whose own work breaks
// the step while its neighbour's choices equal a run without it. Tiny golden model, float32 CPU,
// item-by-item and batched encoder passes.
#include <cstdio>
#include <memory>
#include <vector>

#include "engine/step_isolation.h"
#include "gmock/gmock.h"
#include "tests/model/engine_model_fixture.h"

namespace speechllm::engine {
namespace {

using ::testing::HasSubstr;

class StepIsolationModelTest : public EngineModelTest, public ::testing::WithParamInterface<bool> {
 protected:
  std::unique_ptr<TorchModelRunner> MakeRunner() {
    TorchRunnerConfig config;
    config.num_kv_blocks = 16;
    config.batched_encoder = GetParam();
    config.runtime.dtype = "float32";
    auto runner = TorchModelRunner::Create(GoldenDir() + "/model", config);
    EXPECT_TRUE(runner.ok()) << runner.status();
    return runner.ok() ? std::move(runner).value() : nullptr;
  }
  std::unique_ptr<EncoderChunk> Block(int64_t first, int64_t end) {
    auto chunk = std::make_unique<EncoderChunk>();
    chunk->first_position = first;
    chunk->end_position = end;
    chunk->frames = BlockFrames(features_, first, end, 128);
    return chunk;
  }
  const FrameMajor features_ = Features(model_->log_mel(), Clip("clip_a"));
};

constexpr SequenceId kGood = 1, kBad = 2;

// Sequence kGood's prompt of `audio_rows` audio rows and one text token, with choices for its last
// two rows.
PrefillItem GoodPrefill(int64_t audio_rows, int64_t audio_token_id) {
  PrefillItem item;
  item.id = kGood;
  item.token_ids.assign(static_cast<size_t>(audio_rows), audio_token_id);
  item.token_ids.push_back(10);
  item.num_audio_rows = audio_rows;
  item.block_table = {0, 1, 2, 3};
  item.first_logit_index = audio_rows - 1;
  return item;
}

TEST_P(StepIsolationModelTest, AFailedStepKeepsTheEncoderStateAndFailsOnlyItsOwnSequence) {
  std::unique_ptr<TorchModelRunner> runner = MakeRunner(), clean = MakeRunner();
  ASSERT_NE(runner, nullptr);
  ASSERT_NE(clean, nullptr);
  const int64_t audio_id = runner->config().audio_token_id;
  const auto first = Block(0, 50), second = Block(50, 100);
  StepPlan start;
  start.encodes = {{kGood, EncodeItem::Kind::kBlock, first.get()}};
  ASSERT_TRUE(runner->Execute(start).ok());
  ASSERT_TRUE(clean->Execute(start).ok());

  // kGood's second block and its prompt, with kBad's prompt asking for audio it never encoded.
  StepPlan plan;
  plan.encodes = {{kGood, EncodeItem::Kind::kBlock, second.get()}};
  plan.prefills = {GoodPrefill(50, audio_id)};
  PrefillItem bad;
  bad.id = kBad;
  bad.token_ids = {audio_id};
  bad.num_audio_rows = 1;
  bad.block_table = {4};
  plan.prefills.push_back(bad);

  const absl::StatusOr<StepResult> whole = runner->Execute(plan);
  ASSERT_FALSE(whole.ok());
  std::printf("the whole step: %s\nencoder positions cached after it: %lld\n",
              whole.status().ToString().c_str(),
              static_cast<long long>(runner->encoder_kv_positions_used()));
  EXPECT_THAT(whole.status().message(), HasSubstr("lacks the audio embeddings"));
  EXPECT_EQ(runner->encoder_kv_positions_used(), 50);  // the second block's 50 were put back

  const absl::StatusOr<StepResult> isolated = ExecuteIsolatingFailures(*runner, plan);
  ASSERT_TRUE(isolated.ok()) << isolated.status();
  ASSERT_EQ(isolated->failed_sequences.size(), 1u);
  EXPECT_EQ(isolated->failed_sequences[0].id, kBad);
  EXPECT_THAT(isolated->failed_sequences[0].status.message(),
              HasSubstr("lacks the audio embeddings"));
  EXPECT_EQ(isolated->executions, 3);  // the whole step, then each sequence alone
  EXPECT_EQ(isolated->audio_tokens, std::vector<int64_t>{50});
  EXPECT_EQ(runner->encoder_kv_positions_used(), 100);
  ASSERT_EQ(isolated->choices.size(), 2u);
  EXPECT_TRUE(isolated->choices[1].empty());

  // The same step without kBad on a runner that never saw it.
  StepPlan alone = PartOf(plan, {kGood});
  const absl::StatusOr<StepResult> reference = clean->Execute(alone);
  ASSERT_TRUE(reference.ok()) << reference.status();
  ASSERT_EQ(reference->choices.size(), 1u);
  ASSERT_EQ(isolated->choices[0].size(), reference->choices[0].size());
  for (size_t i = 0; i < reference->choices[0].size(); ++i) {
    const TokenChoice &got = isolated->choices[0][i], &want = reference->choices[0][i];
    std::printf("row %zu: token %lld (alone %lld), margin %.6f (alone %.6f)\n", i,
                static_cast<long long>(got.token_id), static_cast<long long>(want.token_id),
                got.margin, want.margin);
    EXPECT_EQ(got.token_id, want.token_id);
    EXPECT_EQ(got.margin, want.margin);
    EXPECT_EQ(got.log_probability, want.log_probability);
  }
}

INSTANTIATE_TEST_SUITE_P(EncoderPasses, StepIsolationModelTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Batched") : std::string("PerItem");
                         });

}  // namespace
}  // namespace speechllm::engine
