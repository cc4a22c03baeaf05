// RuntimeOptions: where and in which precision the model runs ("cpu"/"cuda", "float32"/"bfloat16").
// Torch-free so that tools and the service can pass it through without torch headers. Plain data.
#ifndef SPEECHLLM_ENGINE_MODEL_RUNTIME_OPTIONS_H_
#define SPEECHLLM_ENGINE_MODEL_RUNTIME_OPTIONS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace speechllm::engine {

struct RuntimeOptions {
  std::string device = "cpu";  // "cpu", "cuda" or "cuda:N"
  std::string dtype;           // "float32", "bfloat16", "float16"; empty = the checkpoint's dtype
  int num_threads = 0;         // intra-op threads for CPU kernels; 0 = leave libtorch's setting
  // OpenBLAS's worker threads for CPU matrix products (blas_threads.h), on device cpu: 0 = leave
  // the library's setting, -1 = automatic (one less than the intra-op threads, at least 1).
  int blas_threads = 0;

  absl::Status Validate() const {
    if (device != "cpu" && device.rfind("cuda", 0) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("device \"", device, "\" is not cpu, cuda or cuda:N"));
    }
    if (!dtype.empty() && dtype != "float32" && dtype != "bfloat16" && dtype != "float16") {
      return absl::InvalidArgumentError(
          absl::StrCat("dtype \"", dtype, "\" is not float32, bfloat16 or float16"));
    }
    if (num_threads < 0) return absl::InvalidArgumentError("num_threads must be >= 0");
    if (blas_threads < -1) {
      return absl::InvalidArgumentError("blas_threads must be >= 0, or -1 for automatic");
    }
    return absl::OkStatus();
  }
  std::string ToString() const {
    return absl::StrCat("RuntimeOptions(device=", device,
                        ", dtype=", dtype.empty() ? "checkpoint" : dtype,
                        ", num_threads=", num_threads, ", blas_threads=", blas_threads, ")");
  }
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_RUNTIME_OPTIONS_H_
