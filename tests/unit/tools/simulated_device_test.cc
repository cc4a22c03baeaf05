// speechllm-bench's simulated device (tools/bench/simulated_device.h): the cost flag's parsing and
// the FakeModelRunner's step cost it configures (FakeModelRunner::SimulatedCost).
#include "tools/bench/simulated_device.h"

#include "gtest/gtest.h"

namespace speechllm::bench {
namespace {

TEST(SimulatedDeviceTest, ParsesFourMillisecondFigures) {
  const absl::StatusOr<engine::FakeModelRunner::Options::StepCost> cost =
      ParseStepCost("6.3,0.027,0.045,0");
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_EQ(cost->base, absl::Microseconds(6300));
  EXPECT_EQ(cost->per_decode_row, absl::Microseconds(27));
  EXPECT_EQ(cost->per_prefill_token, absl::Microseconds(45));
  EXPECT_EQ(cost->per_encoder_position, absl::ZeroDuration());
}

TEST(SimulatedDeviceTest, RejectsOtherShapesNamingTheFlag) {
  for (const char* bad :
       {"", "1,2,3", "1,2,3,4,5", "1,2,x,4", "1,-2,3,4", "1,2,3,nan", "inf,0,0,0", "1,1e400,0,0",
        "1,0,0,0,0,500", "1,0,0,0,2.5,500", "1,0,0,0,10,-1", "1,0,0,0,10,500,7"}) {
    const auto cost = ParseStepCost(bad);
    ASSERT_FALSE(cost.ok()) << bad;
    EXPECT_EQ(cost.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(cost.status().message().find("--simulate_step_cost"), std::string::npos);
  }
  EXPECT_FALSE(MakeSimulatedDevice("1,2").ok());
}

TEST(SimulatedDeviceTest, AStepCostsBasePlusRowsTokensAndEncoderPositions) {
  engine::FakeModelRunner::Options options;
  options.step_cost = *ParseStepCost("5,0.5,0.25,0.01");
  const engine::FakeModelRunner runner(options);
  engine::StepPlan plan;
  EXPECT_EQ(runner.SimulatedCost(plan, 0, 1), absl::ZeroDuration());  // no step, no cost
  plan.prefills.resize(3);
  plan.prefills[0].token_ids = {7};  // two decode rows
  plan.prefills[1].token_ids = {8};
  plan.prefills[2].token_ids.assign(40, 9);  // a prefill of 40 tokens
  // 5 + 2 * 0.5 + 40 * 0.25 + 100 * 0.01 ms.
  EXPECT_EQ(runner.SimulatedCost(plan, 100, /*step=*/1), absl::Milliseconds(17));
}

TEST(SimulatedDeviceTest, EveryNthStepTakesTheOutlierMore) {
  const absl::StatusOr<engine::FakeModelRunner::Options::StepCost> cost =
      ParseStepCost("2,0,0,0,3,750");
  ASSERT_TRUE(cost.ok()) << cost.status();
  EXPECT_EQ(cost->outlier_every_steps, 3);
  EXPECT_EQ(cost->outlier, absl::Milliseconds(750));
  engine::FakeModelRunner::Options options;
  options.step_cost = *cost;
  const engine::FakeModelRunner runner(options);
  engine::StepPlan plan;
  plan.prefills.resize(1);
  plan.prefills[0].token_ids = {7};
  for (const int64_t step : {1, 2, 4, 5}) {
    EXPECT_EQ(runner.SimulatedCost(plan, 0, step), absl::Milliseconds(2)) << step;
  }
  for (const int64_t step : {3, 6}) {
    EXPECT_EQ(runner.SimulatedCost(plan, 0, step), absl::Milliseconds(752)) << step;
  }
}

}  // namespace
}  // namespace speechllm::bench
