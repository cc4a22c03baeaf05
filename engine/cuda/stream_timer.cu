// TimeOnStream (stream_timer.h): a one-thread kernel spins on the global timer for the hold, CUDA
// events bracket the repetitions.
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/cuda/stream_timer.h"

namespace speechllm::engine::cuda {
namespace {

__device__ __forceinline__ uint64_t GlobalTimerNs() {
  uint64_t ns;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(ns));
  return ns;
}

__global__ void HoldKernel(uint64_t hold_ns) {
  const uint64_t start = GlobalTimerNs();
  while (GlobalTimerNs() - start < hold_ns) __nanosleep(1000);
}

// Destroys the events of one measurement on every return path.
struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  ~EventPair() {
    if (start != nullptr) cudaEventDestroy(start);
    if (stop != nullptr) cudaEventDestroy(stop);
  }
};

}  // namespace

const char* TimeOnStream(void* stream, int reps, int hold_us, const std::function<void()>& enqueue,
                         float* ms_per_rep) {
  if (reps < 1 || hold_us < 0 || ms_per_rep == nullptr) return "stream timer: bad arguments";
  const auto s = static_cast<cudaStream_t>(stream);
  EventPair events;
  cudaError_t error = cudaEventCreate(&events.start);
  if (error == cudaSuccess) error = cudaEventCreate(&events.stop);
  if (error != cudaSuccess) return cudaGetErrorString(error);
  HoldKernel<<<1, 1, 0, s>>>(static_cast<uint64_t>(hold_us) * 1000);
  if ((error = cudaGetLastError()) != cudaSuccess) return cudaGetErrorString(error);
  if ((error = cudaEventRecord(events.start, s)) != cudaSuccess) return cudaGetErrorString(error);
  for (int i = 0; i < reps; ++i) enqueue();
  if ((error = cudaEventRecord(events.stop, s)) != cudaSuccess) return cudaGetErrorString(error);
  if ((error = cudaEventSynchronize(events.stop)) != cudaSuccess) return cudaGetErrorString(error);
  float ms = 0.0f;
  if ((error = cudaEventElapsedTime(&ms, events.start, events.stop)) != cudaSuccess)
    return cudaGetErrorString(error);
  *ms_per_rep = ms / static_cast<float>(reps);
  return nullptr;
}

}  // namespace speechllm::engine::cuda
