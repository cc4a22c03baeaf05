// A failed step on the real runner (label model): TorchModelRunner puts back the encoder state of
// the step's sequences (a block's cache cut back, a whole segment's state dropped), and
// ExecuteIsolatingFailures fails only the sequence whose own work breaks the step while its
// neighbours' choices equal runs without it. Tiny golden model, float32 CPU, item-by-item and
// batched encoder passes.
#include <cstdio>
#include <memory>
#include <utility>
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

constexpr SequenceId kGood = 1, kBad = 2, kWhole = 3;

// A prompt of `audio_rows` audio rows and one text token, with choices for its last two rows.
PrefillItem Prompt(SequenceId id, int64_t audio_rows, int64_t audio_token_id,
                   std::vector<int64_t> block_table) {
  PrefillItem item;
  item.id = id;
  item.token_ids.assign(static_cast<size_t>(audio_rows), audio_token_id);
  item.token_ids.push_back(10);
  item.num_audio_rows = audio_rows;
  item.block_table = std::move(block_table);
  item.first_logit_index = audio_rows - 1;
  return item;
}

void ExpectSameChoices(const std::vector<TokenChoice>& got, const std::vector<TokenChoice>& want,
                       const char* who) {
  ASSERT_EQ(got.size(), want.size()) << who;
  for (size_t i = 0; i < want.size(); ++i) {
    std::printf("%s row %zu: token %lld (alone %lld), margin %.6f (alone %.6f)\n", who, i,
                static_cast<long long>(got[i].token_id), static_cast<long long>(want[i].token_id),
                got[i].margin, want[i].margin);
    EXPECT_EQ(got[i].token_id, want[i].token_id) << who;
    EXPECT_EQ(got[i].margin, want[i].margin) << who;
    EXPECT_EQ(got[i].log_probability, want[i].log_probability) << who;
  }
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

  // kGood's second block and its prompt, kWhole's whole segment and its prompt, and kBad's prompt
  // asking for audio it never encoded.
  SegmentEnd whole_segment;
  whole_segment.features = features_.values;
  whole_segment.num_frames = features_.num_frames;
  whole_segment.num_valid_frames = features_.num_valid_frames;
  StepPlan plan;
  plan.encodes = {{kGood, EncodeItem::Kind::kBlock, second.get()},
                  {kWhole, EncodeItem::Kind::kFull, nullptr, &whole_segment}};
  PrefillItem bad;
  bad.id = kBad;
  bad.token_ids = {audio_id};
  bad.num_audio_rows = 1;
  bad.block_table = {4};
  plan.prefills = {Prompt(kGood, 50, audio_id, {0, 1, 2, 3}), bad,
                   Prompt(kWhole, 20, audio_id, {5, 6})};

  const absl::StatusOr<StepResult> whole = runner->Execute(plan);
  ASSERT_FALSE(whole.ok());
  std::printf("the whole step: %s\nencoder positions cached after it: %lld\n",
              whole.status().ToString().c_str(),
              static_cast<long long>(runner->encoder_kv_positions_used()));
  EXPECT_THAT(whole.status().message(), HasSubstr("lacks the audio embeddings"));
  EXPECT_EQ(runner->encoder_kv_positions_used(), 50);  // the second block's 50 were put back

  int64_t executions = 0;
  const absl::StatusOr<StepResult> isolated = ExecuteIsolatingFailures(*runner, plan, &executions);
  ASSERT_TRUE(isolated.ok()) << isolated.status();
  ASSERT_EQ(isolated->failed_sequences.size(), 1u);
  EXPECT_EQ(isolated->failed_sequences[0].id, kBad);
  EXPECT_THAT(isolated->failed_sequences[0].status.message(),
              HasSubstr("lacks the audio embeddings"));
  EXPECT_EQ(executions, 5);  // the whole step; {kGood}, {kWhole, kBad}; {kWhole}, {kBad}
  ASSERT_EQ(isolated->audio_tokens.size(), 2u);
  EXPECT_EQ(isolated->audio_tokens[0], 50);
  EXPECT_EQ(runner->encoder_kv_positions_used(), 100);
  ASSERT_EQ(isolated->choices.size(), 3u);
  EXPECT_TRUE(isolated->choices[1].empty());

  // Each part alone on a runner that never saw kBad.
  const absl::StatusOr<StepResult> good = clean->Execute(PartOf(plan, {kGood}));
  const absl::StatusOr<StepResult> whole_alone = clean->Execute(PartOf(plan, {kWhole}));
  ASSERT_TRUE(good.ok()) << good.status();
  ASSERT_TRUE(whole_alone.ok()) << whole_alone.status();
  EXPECT_EQ(isolated->audio_tokens[1], whole_alone->audio_tokens[0]);
  ExpectSameChoices(isolated->choices[0], good->choices[0], "block");
  ExpectSameChoices(isolated->choices[2], whole_alone->choices[0], "whole segment");
}

INSTANTIATE_TEST_SUITE_P(EncoderPasses, StepIsolationModelTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Batched") : std::string("PerItem");
                         });

}  // namespace
}  // namespace speechllm::engine
