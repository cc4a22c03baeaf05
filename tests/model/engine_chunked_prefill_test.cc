// Chunked prefill on the tiny fixture model (label model): with a step budget of 16 tokens each
// final's prefill runs in pieces over several steps (the audio rows of a piece taken from the
// middle of the segment's embeddings), no step of offline finals passes the budget, and the finals
// still equal Hugging Face's greedy tokens: from features, from precomputed embeddings, and
// streamed with partial updates whose drafts are verified in pieces too; fast finals, which decode
// on the KV that verify and advance pieces left, are the same at both budgets.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/step_observer.h"
#include "tests/model/engine_model_fixture.h"

namespace speechllm::engine {
namespace {

constexpr int64_t kStepBudget = 16;

// The largest step and the number of steps, as the engine reports them (engine thread).
class StepSizes : public StepObserver {
 public:
  void OnStep(const StepRecord& step) override {
    max_decoder_tokens = std::max(max_decoder_tokens.load(), step.decoder_tokens);
    ++steps;
  }
  std::atomic<int64_t> max_decoder_tokens{0}, steps{0};
};

// Offline finals from features and from precomputed embeddings at the 16-token budget on
// `device` (float32): every final equals HF greedy and no step passes the budget.
void ExpectOfflineFinalsInPieces(const LogMel& log_mel, const std::string& device) {
  StepSizes sizes;  // outlives the engine that calls it
  std::unique_ptr<Engine> engine =
      MakeEngine(/*num_kv_blocks=*/128, std::nullopt, device, kStepBudget);
  ASSERT_NE(engine, nullptr);
  engine->SetStepObserver(&sizes);
  ExpectOfflineFinalsEqualGolden(engine.get(), log_mel,
                                 {"features_a", "features_b", "embeddings_b"});
  engine->Stop();
  std::printf("%s: %lld steps, the largest of %lld tokens (budget %lld)\n", device.c_str(),
              static_cast<long long>(sizes.steps.load()),
              static_cast<long long>(sizes.max_decoder_tokens.load()),
              static_cast<long long>(kStepBudget));
  EXPECT_LE(sizes.max_decoder_tokens.load(), kStepBudget);
}

// Fast finals decode on top of the KV the partial updates (or, without partials, the audio-only
// advances) left, so a piece with wrong audio rows or positions would change them: at a 16-token
// budget they equal those of the default budget, token for token.
void ExpectFastFinalsTheSameInPieces(const LogMel& log_mel, const std::string& device) {
  for (const bool partials : {true, false}) {
    SCOPED_TRACE(partials ? "verify pieces" : "advance pieces");
    SequenceConfig config = TwentyFourTokens();
    config.partial_updates = partials;
    std::vector<std::vector<int64_t>> finals_of_budget[2];
    int index = 0;
    for (const int64_t budget : {EngineConfig{}.max_step_tokens, kStepBudget}) {
      StepSizes sizes;
      std::unique_ptr<Engine> engine =
          MakeEngine(/*num_kv_blocks=*/128, std::nullopt, device, budget);
      ASSERT_NE(engine, nullptr);
      engine->SetStepObserver(&sizes);
      const auto outputs = StreamClips(engine.get(), log_mel, 10, FinalMode::kFast, 2, config);
      for (const auto& [id, list] : outputs) {
        ASSERT_FALSE(list.empty());
        ASSERT_TRUE(list.back().is_final);
        finals_of_budget[index].push_back(list.back().token_ids);
      }
      engine->Stop();
      std::printf("%s, %s, budget %lld: %lld steps, the largest of %lld tokens\n", device.c_str(),
                  partials ? "partials" : "no partials", static_cast<long long>(budget),
                  static_cast<long long>(sizes.steps.load()),
                  static_cast<long long>(sizes.max_decoder_tokens.load()));
      if (budget == kStepBudget && !partials) {
        EXPECT_LE(sizes.max_decoder_tokens.load(), budget + 1);
      }
      ++index;
    }
    ASSERT_EQ(finals_of_budget[0].size(), 2u);
    EXPECT_EQ(finals_of_budget[0], finals_of_budget[1]);
  }
}

TEST_F(EngineModelTest, OfflineFinalsInPiecesEqualHuggingFaceGreedy) {
  ExpectOfflineFinalsInPieces(model_->log_mel(), "cpu");
}

TEST_F(EngineModelTest, FastFinalsAreTheSameInPieces) {
  ExpectFastFinalsTheSameInPieces(model_->log_mel(), "cpu");
}

// The same on the CUDA path (label gpu; skips without a device): pieces through PagedAttention,
// the padded group and the per-sequence long prefills.
TEST_F(EngineModelTest, GpuFinalsInPiecesStayExact) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device (or a CPU libtorch)";
  ExpectOfflineFinalsInPieces(model_->log_mel(), "cuda");
  ExpectFastFinalsTheSameInPieces(model_->log_mel(), "cuda");
}

TEST_F(EngineModelTest, StreamedExactFinalsInPiecesEqualHuggingFaceGreedy) {
  std::unique_ptr<Engine> engine =
      MakeEngine(/*num_kv_blocks=*/128, std::nullopt, "cpu", kStepBudget);
  ASSERT_NE(engine, nullptr);
  StreamExactFinalsExpectingGolden(engine.get(), model_->log_mel(), 50);
  WaitForFreeKvBlocks(*engine);
  EXPECT_EQ(engine->stats().kv_blocks_used, 0);
}

}  // namespace
}  // namespace speechllm::engine
