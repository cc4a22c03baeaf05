#include "engine/model/linear_tuning.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "engine/model/cuda_kernels.h"

namespace speechllm::engine {
namespace {

constexpr int64_t kTimedRows[] = {1, 2, 4, kSkinnyGemmMaxRows};
constexpr int kRepsPerTiming = 20;
constexpr int kTimingsPerChoice = 3;  // interleaved; the fastest of each counts
constexpr double kKernelMargin = 0.98;

// Times one shape (the linear's weight and bias) with both products; empty when the kernel does
// not take its layout.
std::vector<SkinnyGemmTiming> TimeShape(const Linear& linear) {
  const at::Tensor& weight = linear.weight;
  const at::Tensor x = at::randn({kSkinnyGemmMaxRows, weight.size(1)}, weight.options());
  std::vector<SkinnyGemmTiming> timings;
  for (const int64_t rows : kTimedRows) {
    const at::Tensor input = x.narrow(0, 0, rows);
    if (!CudaSkinnyLinear(input, weight, linear.bias).defined()) return {};
    const auto library = [&] { at::linear(input, weight, linear.bias); };
    const auto kernel = [&] { CudaSkinnyLinear(input, weight, linear.bias); };
    library();  // cuBLAS's first call of a shape picks its algorithm
    double library_ms = 1e30, kernel_ms = 1e30;
    for (int i = 0; i < kTimingsPerChoice; ++i) {
      library_ms =
          std::min(library_ms, CudaDeviceMsPerRep(weight.device(), kRepsPerTiming, library));
      kernel_ms = std::min(kernel_ms, CudaDeviceMsPerRep(weight.device(), kRepsPerTiming, kernel));
    }
    timings.push_back({weight.size(0), weight.size(1), rows, 1000 * kernel_ms, 1000 * library_ms});
  }
  return timings;
}

}  // namespace

absl::StatusOr<SkinnyGemmSetting> ParseSkinnyGemmSetting(absl::string_view value) {
  if (value.empty() || value == "auto") return SkinnyGemmSetting{};
  int64_t rows = 0;
  if (!absl::SimpleAtoi(value, &rows) || rows < 0 || rows > kSkinnyGemmMaxRows) {
    return absl::InvalidArgumentError(
        absl::StrCat(kSkinnyGemmVariable, "=", value, ": expected auto, 0 (off) or 1 to 8 rows"));
  }
  return SkinnyGemmSetting{false, rows};
}

int64_t SkinnyRowsFromTimings(std::vector<SkinnyGemmTiming> timings) {
  std::sort(timings.begin(), timings.end(),
            [](const SkinnyGemmTiming& a, const SkinnyGemmTiming& b) { return a.rows < b.rows; });
  int64_t rows = 0;
  for (const SkinnyGemmTiming& t : timings) {
    if (!(t.kernel_us < kKernelMargin * t.library_us)) break;
    rows = t.rows;
  }
  return rows;
}

absl::StatusOr<std::vector<SkinnyGemmTiming>> TuneSkinnyLinears(
    const std::vector<Linear*>& linears) {
  const char* variable = std::getenv(kSkinnyGemmVariable);
  const absl::StatusOr<SkinnyGemmSetting> setting =
      ParseSkinnyGemmSetting(variable == nullptr ? "" : variable);
  if (!setting.ok()) return setting.status();
  const at::NoGradGuard no_grad;  // the kernels run for inference only
  std::vector<SkinnyGemmTiming> timings;
  std::map<std::tuple<int64_t, int64_t, at::ScalarType, bool, int>, int64_t> rows_of_shape;
  for (Linear* linear : linears) {
    linear->skinny_max_rows = 0;
    const at::Tensor& weight = linear->weight;
    if (!weight.defined() || weight.dim() != 2 || !CudaKernelsEnabled(weight.device())) continue;
    const auto key = std::make_tuple(weight.size(0), weight.size(1), weight.scalar_type(),
                                     linear->bias.defined(), weight.device().index());
    auto found = rows_of_shape.find(key);
    if (found == rows_of_shape.end()) {
      int64_t rows = 0;
      if (setting->timed) {
        const std::vector<SkinnyGemmTiming> shape_timings = TimeShape(*linear);
        rows = SkinnyRowsFromTimings(shape_timings);
        timings.insert(timings.end(), shape_timings.begin(), shape_timings.end());
      } else {
        // The kernel only where it takes the layout (the row count does not change that).
        const at::Tensor probe = at::zeros({1, weight.size(1)}, weight.options());
        rows = CudaSkinnyLinear(probe, weight, linear->bias).defined() ? setting->max_rows : 0;
      }
      found = rows_of_shape.emplace(key, rows).first;
    }
    linear->skinny_max_rows = found->second;
  }
  return timings;
}

std::string SkinnyTimingsToString(const std::vector<SkinnyGemmTiming>& timings) {
  std::string text;
  for (size_t i = 0; i < timings.size(); ++i) {
    const SkinnyGemmTiming& t = timings[i];
    const bool new_shape = i == 0 || timings[i - 1].out_features != t.out_features ||
                           timings[i - 1].in_features != t.in_features;
    if (new_shape) {
      absl::StrAppend(&text, i == 0 ? "" : "; ", t.out_features, "x", t.in_features, ":");
    }
    absl::StrAppend(&text, " b", t.rows, " ", absl::SixDigits(t.kernel_us), "/",
                    absl::SixDigits(t.library_us));
  }
  return text.empty() ? text : absl::StrCat(text, " (kernel/cuBLAS us)");
}

}  // namespace speechllm::engine
