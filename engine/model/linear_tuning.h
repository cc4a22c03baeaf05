// Chooses, per weight shape, between libtorch's GEMM (cuBLAS) and the project's skinny GEMM
// (engine/cuda/skinny_gemm.h) for decode-sized inputs of 1 to 8 rows. Both are timed on the device
// at model load, and each Linear records up to how many rows the kernel was faster
// (Linear::skinny_max_rows). Called on the thread that loads the model, before any decode graph is
// captured; the choice then holds for the model's life.
#ifndef SPEECHLLM_ENGINE_MODEL_LINEAR_TUNING_H_
#define SPEECHLLM_ENGINE_MODEL_LINEAR_TUNING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/model/layers.h"

namespace speechllm::engine {

// The environment variable that overrides the timing: "0" never uses the kernel, "1" to "8" uses
// it up to that many rows without timing (tests, comparisons), "auto" or unset times both.
inline constexpr char kSkinnyGemmVariable[] = "SPEECHLLM_SKINNY_GEMM";
// The most input rows the kernel takes (cuda::kSkinnyMaxRows).
inline constexpr int64_t kSkinnyGemmMaxRows = 8;

struct SkinnyGemmSetting {
  bool timed = true;
  int64_t max_rows = 0;  // when not timed
};
// Parses the variable's value; InvalidArgument naming it and the accepted values otherwise.
absl::StatusOr<SkinnyGemmSetting> ParseSkinnyGemmSetting(absl::string_view value);
// The setting in this process's environment (unset: timed).
absl::StatusOr<SkinnyGemmSetting> SkinnyGemmSettingFromEnvironment();

// One shape at one row count: device microseconds per product of each.
struct SkinnyGemmTiming {
  int64_t out_features = 0;
  int64_t in_features = 0;
  int64_t rows = 0;
  double kernel_us = 0;
  double library_us = 0;
};

// The most rows up to which the kernel beat the library by at least 2 % at every timed row count
// of one shape (any order): 0 when it did not at the fewest rows.
int64_t SkinnyRowsFromTimings(std::vector<SkinnyGemmTiming> timings);

// What TuneSkinnyLinears did: the timings it made (1, 2, 4 and 8 rows per shape), and the shapes
// whose timing the device refused ("out x in: message"; they keep cuBLAS).
struct SkinnyTuning {
  std::vector<SkinnyGemmTiming> timings;
  std::vector<std::string> failures;
};

// Sets skinny_max_rows of each linear: 0 where the kernels do not run (not CUDA, a build without
// them, SPEECHLLM_USE_CUDA_KERNELS=0) or the layout does not fit, else per the setting of
// SPEECHLLM_SKINNY_GEMM. Each shape is timed once, over all the linears of that shape in turn.
// InvalidArgument for a bad SPEECHLLM_SKINNY_GEMM.
absl::StatusOr<SkinnyTuning> TuneSkinnyLinears(const std::vector<Linear*>& linears);

// "out x in: bN kernel/library us ..." per shape, then any failures; for logs and benchmark JSON.
std::string SkinnyTuningToString(const SkinnyTuning& tuning);

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_LINEAR_TUNING_H_
