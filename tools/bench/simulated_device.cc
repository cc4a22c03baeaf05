#include "tools/bench/simulated_device.h"

#include <cmath>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace speechllm::bench {
namespace {

// 65,536 blocks of 16 tokens: about 1,000 tokens for each of 1,000 streams.
constexpr int64_t kSimulatedKvBlocks = 65536;

}  // namespace

absl::StatusOr<engine::FakeModelRunner::Options::StepCost> ParseStepCost(absl::string_view text) {
  const std::vector<absl::string_view> fields = absl::StrSplit(text, ',');
  std::vector<double> ms;
  for (absl::string_view field : fields) {
    double value = 0;
    if (!absl::SimpleAtod(field, &value) || !std::isfinite(value) || value < 0) break;
    ms.push_back(value);
  }
  const bool with_outliers = fields.size() == 6;
  const int64_t every = with_outliers && ms.size() == 6 ? static_cast<int64_t>(ms[4]) : 0;
  if ((fields.size() != 4 && !with_outliers) || ms.size() != fields.size() ||
      (with_outliers && (every < 1 || static_cast<double>(every) != ms[4]))) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--simulate_step_cost=", text,
        ": expected BASE,DECODE_ROW,PREFILL_TOKEN,ENCODER_POSITION in ms, each a finite number "
        ">= 0, optionally followed by OUTLIER_EVERY_STEPS (a whole number >= 1),OUTLIER_MS"));
  }
  engine::FakeModelRunner::Options::StepCost cost;
  cost.base = absl::Milliseconds(ms[0]);
  cost.per_decode_row = absl::Milliseconds(ms[1]);
  cost.per_prefill_token = absl::Milliseconds(ms[2]);
  cost.per_encoder_position = absl::Milliseconds(ms[3]);
  if (with_outliers) {
    cost.outlier_every_steps = every;
    cost.outlier = absl::Milliseconds(ms[5]);
  }
  return cost;
}

absl::StatusOr<std::unique_ptr<engine::ModelRunner>> MakeSimulatedDevice(absl::string_view cost) {
  absl::StatusOr<engine::FakeModelRunner::Options::StepCost> parsed = ParseStepCost(cost);
  if (!parsed.ok()) return parsed.status();
  engine::FakeModelRunner::Options options;
  options.num_kv_blocks = kSimulatedKvBlocks;
  options.step_cost = *parsed;
  return std::make_unique<engine::FakeModelRunner>(options);
}

}  // namespace speechllm::bench
