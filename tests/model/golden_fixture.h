// GoldenFixture: a Hugging Face golden directory (model/, golden.safetensors, clip WAVs) opened for
// the parity tests, with tensor comparison helpers that print the measured errors. Test-only; one
// thread. The directory comes from the first non-flag command-line argument, else
// $SPEECHLLM_GOLDEN_DIR.
#ifndef SPEECHLLM_TESTS_MODEL_GOLDEN_FIXTURE_H_
#define SPEECHLLM_TESTS_MODEL_GOLDEN_FIXTURE_H_

#include <ATen/ATen.h>

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "engine/model/safetensors.h"

namespace speechllm::testing {

struct TensorErrors {
  double max_abs = 0, mean_abs = 0, relative = 0;  // relative = ||out - ref|| / ||ref||
};

// Errors of `out` against `ref` (both converted to float64 on the CPU; shapes must match).
TensorErrors Compare(const at::Tensor& out, const at::Tensor& ref);

// The elements of `tensor` (of dtype T, on any device) in row-major order, on the host.
template <typename T>
std::vector<T> TensorValues(const at::Tensor& tensor) {
  const at::Tensor host = tensor.to(at::kCPU).contiguous();
  return std::vector<T>(host.data_ptr<T>(), host.data_ptr<T>() + host.numel());
}

class GoldenFixture {
 public:
  // Directory given on the command line (SetDirectory) or by $SPEECHLLM_GOLDEN_DIR.
  static void SetDirectory(const std::string& dir);
  static std::string Directory();

  // Opens golden.safetensors; aborts the calling test with a failure if it cannot.
  static std::unique_ptr<GoldenFixture> Open();

  const engine::SafetensorsFile& file() const { return *file_; }
  bool Has(const std::string& key) const { return file_->Contains(key); }
  std::vector<std::string> Keys() const { return file_->Names(); }
  // The tensor as stored (float32, int32, ...), on the CPU.
  at::Tensor Get(const std::string& key) const;
  // Mono samples of `name`.wav in the fixture directory.
  std::vector<float> Clip(const std::string& name) const;

 private:
  std::unique_ptr<engine::SafetensorsFile> file_;
};

}  // namespace speechllm::testing

#endif  // SPEECHLLM_TESTS_MODEL_GOLDEN_FIXTURE_H_
