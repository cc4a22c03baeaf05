// Uploads of the small tensors a step builds on the host (positions, KV slots, gather indices,
// masks, mel frames) to the device that runs the model. On CUDA they go through pinned memory
// without waiting: libtorch's Tensor::to(cuda) from pageable memory ends with a stream
// synchronisation, so each upload held the host until every kernel queued before it had run.
// SPEECHLLM_PINNED_UPLOADS=0 goes back to those copies. Called on the thread that runs the model.
#ifndef SPEECHLLM_ENGINE_MODEL_DEVICE_UPLOAD_H_
#define SPEECHLLM_ENGINE_MODEL_DEVICE_UPLOAD_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace speechllm::engine {

// `values` as a 1-D int64 (int32) tensor on `device`, in storage of its own. Throws c10::Error
// inside a CUDA graph capture, which would record the copy from a host buffer that is reused
// after the capture.
at::Tensor UploadValues(const std::vector<int64_t>& values, at::Device device);
at::Tensor UploadValues(const std::vector<int32_t>& values, at::Device device);

// `host` (a CPU tensor) on `device` in `dtype`, in storage of its own (never a view of host's, so
// the host memory may be reused at once). Throws as UploadValues does.
at::Tensor UploadTensor(const at::Tensor& host, at::Device device, at::ScalarType dtype);

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_DEVICE_UPLOAD_H_
