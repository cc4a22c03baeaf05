#include "engine/model/device_memory.h"

#include "engine/model/host_memory.h"

// As in cuda_kernels.cc: Debian's CPU libtorch ships c10/cuda headers without their generated
// configuration header; only a CUDA libtorch has both.
#if __has_include(<c10/cuda/impl/cuda_cmake_macros.h>)
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime_api.h>
#define SPEECHLLM_HAVE_C10_CUDA 1
#endif

namespace speechllm::engine {

int64_t FreeMemoryBytes(c10::Device device) {
  if (device.is_cpu()) return HostAvailableMemoryBytes();
#if SPEECHLLM_HAVE_C10_CUDA
  if (device.is_cuda()) {
    const c10::cuda::CUDAGuard guard(device);
    // Blocks the allocator kept from warm-up and graph capture serve later steps: free, not taken.
    c10::cuda::CUDACachingAllocator::emptyCache();
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
      (void)cudaGetLastError();  // clear the sticky error for the next call
      return -1;
    }
    return static_cast<int64_t>(free_bytes);
  }
#endif
  return -1;
}

}  // namespace speechllm::engine
