// FreeMemoryBytes: memory a device has free for more tensors, for the automatic encoder K/V budget
// (engine_admission.cc). CPU: the host's available memory within any cgroup limit; CUDA: the
// driver's free memory once torch's allocator has returned its unused blocks. Called once by
// TorchModelRunner::Create on the thread that loads the model.
#ifndef SPEECHLLM_ENGINE_MODEL_DEVICE_MEMORY_H_
#define SPEECHLLM_ENGINE_MODEL_DEVICE_MEMORY_H_

#include <c10/core/Device.h>

#include <cstdint>

namespace speechllm::engine {

// Bytes; -1 when unknown (another device kind, a failed query, a libtorch without CUDA headers).
int64_t FreeMemoryBytes(c10::Device device);

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_DEVICE_MEMORY_H_
