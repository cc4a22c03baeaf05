#include "engine/model/device_upload.h"

#include <cstring>

#include "engine/model/cuda_kernels.h"

// Debian's CPU libtorch ships the c10/cuda headers without their generated configuration header
// and never holds CUDA tensors (cuda_kernels.cc tells the builds apart the same way). Graphs are
// captured only with the project's kernels, whose library brings the CUDA runtime.
#if SPEECHLLM_CUDA_KERNELS && __has_include(<c10/cuda/impl/cuda_cmake_macros.h>)
#include <c10/cuda/CUDAStream.h>
#define SPEECHLLM_UPLOAD_HAS_C10_CUDA 1
#endif

namespace speechllm::engine {
namespace {

// Refuses uploads while `device`'s current stream captures a graph: the copy would be recorded
// from a pinned block that the host allocator hands out again after the capture.
void CheckNotCapturing(at::Device device) {
#if SPEECHLLM_UPLOAD_HAS_C10_CUDA
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  const cudaError_t error =
      cudaStreamIsCapturing(c10::cuda::getCurrentCUDAStream(device.index()).stream(), &status);
  if (error != cudaSuccess) {
    cudaGetLastError();  // not left for the next kernel launch's check to report
    TORCH_CHECK(false, "a host upload could not ask whether its stream captures a CUDA graph: ",
                cudaGetErrorString(error));
  }
  TORCH_CHECK(status == cudaStreamCaptureStatusNone,
              "a host upload inside a CUDA graph capture (the graph would copy from a host block "
              "that is reused)");
#else
  static_cast<void>(device);
#endif
}

// SPEECHLLM_PINNED_UPLOADS=0: libtorch's blocking copies, as before these uploads (read once).
bool PinnedUploads(at::Device device) {
  static const bool switched_off = SwitchedOffByEnvironment("SPEECHLLM_PINNED_UPLOADS");
  return device.is_cuda() && !switched_off;
}

// A pinned host tensor goes to the GPU without a stream synchronisation; the host allocator keeps
// its block until the copy has run (libtorch records an event on the stream).
at::Tensor FromPinned(const at::Tensor& pinned, at::Device device) {
  return pinned.to(device, /*non_blocking=*/true);
}

template <typename T>
at::Tensor Upload(const std::vector<T>& values, at::ScalarType dtype, at::Device device) {
  const auto options = at::TensorOptions().dtype(dtype);
  if (!PinnedUploads(device)) return at::tensor(values, options).to(device);
  CheckNotCapturing(device);
  const at::Tensor pinned =
      at::empty({static_cast<int64_t>(values.size())}, options.pinned_memory(true));
  if (!values.empty()) std::memcpy(pinned.data_ptr(), values.data(), values.size() * sizeof(T));
  return FromPinned(pinned, device);
}

}  // namespace

at::Tensor UploadValues(const std::vector<int64_t>& values, at::Device device) {
  return Upload(values, at::kLong, device);
}

at::Tensor UploadValues(const std::vector<int32_t>& values, at::Device device) {
  return Upload(values, at::kInt, device);
}

at::Tensor UploadTensor(const at::Tensor& host, at::Device device, at::ScalarType dtype) {
  TORCH_CHECK(host.device().is_cpu(), "UploadTensor takes a CPU tensor, got one on ",
              host.device());
  if (!PinnedUploads(device)) return host.to(device, dtype, /*non_blocking=*/false, /*copy=*/true);
  CheckNotCapturing(device);
  // Converted on the host while it is copied into pinned memory of its own (so a pinned `host`
  // is not read by the copy later, and the pinned block holds the final bytes only).
  at::Tensor pinned = at::empty(host.sizes(), host.options().dtype(dtype).pinned_memory(true));
  pinned.copy_(host);
  return FromPinned(pinned, device);
}

}  // namespace speechllm::engine
