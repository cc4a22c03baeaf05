// The per-token log-probabilities a segment's output carries, for a final's confidence (label
// unit, FakeModelRunner): tokens the model chose carry its log-probability of them; a committed
// (forced) token the model disagreed with carries the model's log-probability of that committed
// token, not of its own choice; a forced token it agrees with carries its own.
#include <vector>

#include "gtest/gtest.h"
#include "tests/unit/engine/engine_fixture.h"

namespace speechllm::engine {
namespace {

TEST_F(EngineTest, AFinalCarriesTheModelsLogProbabilityOfEachOfItsTokens) {
  MakeEngine();
  // 84 audio tokens; after the 4-token suffix the toy model chooses 54, 55, 56, ...
  const std::vector<int64_t> greedy = FakeModelRunner::Greedy(84, 4, 256);
  ASSERT_GE(greedy.size(), 4u);
  ASSERT_EQ(greedy[0], 54);
  struct Case {
    std::vector<int64_t> forced;
    std::vector<bool> disagrees;  // per forced token
  };
  for (const Case& c : {Case{{}, {}}, Case{{54, 55}, {false, false}}, Case{{54, 70}, {false, true}},
                        Case{{60, 61}, {true, true}}}) {
    SCOPED_TRACE(::testing::PrintToString(c.forced));
    SequenceConfig config;
    config.partial_updates = false;
    const SequenceId id = Add(config);
    ASSERT_TRUE(engine_->StartSegment(id, {0, kPrefix, kSuffix}).ok());
    ASSERT_TRUE(engine_->EndSegment(id, End(0, 337, 0, c.forced)).ok());
    const std::vector<SequenceOutput> outputs = Collect(1);
    ASSERT_EQ(outputs.size(), 1u);
    const SequenceOutput& final = outputs[0];
    ASSERT_TRUE(final.status.ok()) << final.status;
    ASSERT_EQ(final.token_log_probabilities.size(), final.token_ids.size());
    ASSERT_GT(final.token_ids.size(), c.forced.size());
    for (size_t i = 0; i < final.token_ids.size(); ++i) {
      const bool overruled = i < c.forced.size() && c.disagrees[i];
      if (i < c.forced.size()) {
        EXPECT_EQ(final.token_ids[i], c.forced[i]);
      }
      EXPECT_FLOAT_EQ(final.token_log_probabilities[i],
                      overruled ? FakeModelRunner::kUnchosenLogProbability
                                : FakeModelRunner::LogProbability(final.token_ids[i]))
          << "token " << i;
    }
    engine_->Release(id);
  }
  ExpectAllBlocksFree();
}

}  // namespace
}  // namespace speechllm::engine
