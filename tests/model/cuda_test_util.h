// Helpers for the tests of the project's CUDA kernels: device copies of CPU tensors, so the tests
// run with Debian's CPU libtorch as well as a CUDA one (the reference is computed on the CPU).
// Test threads only.
#ifndef SPEECHLLM_TESTS_MODEL_CUDA_TEST_UTIL_H_
#define SPEECHLLM_TESTS_MODEL_CUDA_TEST_UTIL_H_

#include <cuda_runtime.h>

#include <ATen/ATen.h>

#include <algorithm>

#include "gtest/gtest.h"

namespace speechllm::testing {

// A device copy of a CPU tensor's bytes, freed at scope exit.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(const at::Tensor& host) : bytes_(host.nbytes()) {
    EXPECT_EQ(cudaMalloc(&data_, std::max<size_t>(bytes_, 1)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(data_, host.data_ptr(), bytes_, cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(data_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* data() const { return data_; }
  // Copies the device bytes back into `host` (same size as at construction).
  void CopyTo(const at::Tensor& host) const {
    EXPECT_EQ(cudaMemcpy(host.data_ptr(), data_, bytes_, cudaMemcpyDeviceToHost), cudaSuccess);
  }
  // Sets every byte on the device to `byte` (0xff: NaN in every float dtype).
  void Fill(int byte) const { EXPECT_EQ(cudaMemset(data_, byte, bytes_), cudaSuccess); }

 private:
  size_t bytes_;
  void* data_ = nullptr;
};

}  // namespace speechllm::testing

#endif  // SPEECHLLM_TESTS_MODEL_CUDA_TEST_UTIL_H_
