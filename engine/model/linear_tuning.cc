#include "engine/model/linear_tuning.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
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

// Times one shape with both products; empty when the kernel does not take its layout. Each
// repetition takes the next of `same_shape` (every layer's matrix of the shape), so that weights
// come from memory as in a decode step, not from the L2 cache that one matrix of a few tens of MB
// would stay in.
std::vector<SkinnyGemmTiming> TimeShape(const std::vector<Linear*>& same_shape) {
  const at::Tensor& weight = same_shape.front()->weight;
  const at::Tensor x = at::randn({kSkinnyGemmMaxRows, weight.size(1)}, weight.options());
  std::vector<SkinnyGemmTiming> timings;
  size_t next = 0;
  const auto take = [&]() -> const Linear& { return *same_shape[next++ % same_shape.size()]; };
  for (const int64_t rows : kTimedRows) {
    const at::Tensor input = x.narrow(0, 0, rows);
    if (!CudaSkinnyLinear(input, weight, same_shape.front()->bias).defined()) return {};
    const auto library = [&] {
      const Linear& linear = take();
      at::linear(input, linear.weight, linear.bias);
    };
    const auto kernel = [&] {
      const Linear& linear = take();
      CudaSkinnyLinear(input, linear.weight, linear.bias);
    };
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

absl::StatusOr<SkinnyGemmSetting> SkinnyGemmSettingFromEnvironment() {
  const char* variable = std::getenv(kSkinnyGemmVariable);
  return ParseSkinnyGemmSetting(variable == nullptr ? "" : variable);
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

absl::StatusOr<SkinnyTuning> TuneSkinnyLinears(const std::vector<Linear*>& linears) {
  const absl::StatusOr<SkinnyGemmSetting> setting = SkinnyGemmSettingFromEnvironment();
  if (!setting.ok()) return setting.status();
  const at::NoGradGuard no_grad;  // the kernels run for inference only
  // The linears the kernels could serve, by shape, in their order.
  using Shape = std::tuple<int64_t, int64_t, at::ScalarType, bool, int>;
  std::vector<Shape> shapes;
  std::map<Shape, std::vector<Linear*>> by_shape;
  for (Linear* linear : linears) {
    linear->skinny_max_rows = 0;
    const at::Tensor& weight = linear->weight;
    if (!weight.defined() || weight.dim() != 2 || !CudaKernelsEnabled(weight.device())) continue;
    const Shape shape{weight.size(0), weight.size(1), weight.scalar_type(), linear->bias.defined(),
                      weight.device().index()};
    std::vector<Linear*>& same = by_shape[shape];
    if (same.empty()) shapes.push_back(shape);
    same.push_back(linear);
  }
  SkinnyTuning tuning;
  for (const Shape& shape : shapes) {
    const std::vector<Linear*>& same = by_shape[shape];
    const Linear& first = *same.front();
    int64_t rows = 0;
    // A timing the device refuses (a launch error, no memory for the inputs) leaves the shape on
    // cuBLAS rather than failing the model load.
    try {
      if (setting->timed) {
        const std::vector<SkinnyGemmTiming> timings = TimeShape(same);
        rows = SkinnyRowsFromTimings(timings);
        tuning.timings.insert(tuning.timings.end(), timings.begin(), timings.end());
      } else {
        // The kernel only where it takes the layout (the row count does not change that).
        const at::Tensor probe = at::zeros({1, first.weight.size(1)}, first.weight.options());
        rows = CudaSkinnyLinear(probe, first.weight, first.bias).defined() ? setting->max_rows : 0;
      }
    } catch (const std::exception& error) {
      rows = 0;
      tuning.failures.push_back(absl::StrCat(first.weight.size(0), "x", first.weight.size(1), ": ",
                                             std::string(error.what()).substr(0, 200)));
    }
    for (Linear* linear : same) linear->skinny_max_rows = rows;
  }
  return tuning;
}

std::string SkinnyTuningToString(const SkinnyTuning& tuning) {
  const std::vector<SkinnyGemmTiming>& timings = tuning.timings;
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
  if (!text.empty()) absl::StrAppend(&text, " (kernel/cuBLAS us)");
  for (const std::string& failure : tuning.failures) {
    absl::StrAppend(&text, text.empty() ? "" : "; ", "timing failed, cuBLAS kept: ", failure);
  }
  return text;
}

}  // namespace speechllm::engine
