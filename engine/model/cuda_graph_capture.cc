#include "engine/model/cuda_graph_capture.h"

#include "engine/model/cuda_kernels.h"

#if SPEECHLLM_HAVE_CUDA_GRAPHS
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace speechllm::engine {

bool CudaGraphsEnabled(at::Device device) {
#if SPEECHLLM_HAVE_CUDA_GRAPHS
  static const bool switched_off = SwitchedOffByEnvironment("SPEECHLLM_CUDA_GRAPHS");
  return !switched_off && CudaKernelsEnabled(device);
#else
  static_cast<void>(device);
  return false;
#endif
}

#if SPEECHLLM_HAVE_CUDA_GRAPHS
void GraphCapturer::Capture(at::Device device, CapturedGraph* graph,
                            const std::function<void()>& record) {
  const c10::cuda::CUDAGuard device_guard(device);
  // Capture on a side stream (the legacy default stream cannot be captured), after a warm-up run
  // there.
  c10::cuda::getCurrentCUDAStream(device.index()).synchronize();
  if (!stream_.has_value()) {
    stream_ = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
  }
  const c10::cuda::CUDAStreamGuard stream_guard(*stream_);
  record();
  c10::cuda::getCurrentCUDAStream(device.index()).synchronize();
  // The warm-up's freed blocks stay cached for the side stream, and the allocator cannot release
  // cached blocks while a capture is under way: give them back first, or a capture needs its
  // working set twice (torch.cuda.graph empties the cache before capturing too).
  c10::cuda::CUDACachingAllocator::emptyCache();
  if (pool_ == GraphPoolId{0, 0}) pool_ = at::cuda::graph_pool_handle();
  // A capture the runtime refuses must not leave the caching allocator recording into the pool
  // (graph_capture_cleanup.h): the caller then turns its graphs off and runs eagerly.
  const c10::DeviceIndex device_index = c10::cuda::current_device();
  const GraphPoolId pool = pool_;
  CaptureWithCleanup(
      *graph, pool, record,
      [&] {
        try {
          c10::cuda::CUDACachingAllocator::endAllocateToPool(device_index, pool);
          return true;
        } catch (const c10::Error&) {  // "not currently recording to mempool_id"
          return false;
        }
      },
      [&] { c10::cuda::CUDACachingAllocator::releasePool(device_index, pool); });
  c10::cuda::getCurrentCUDAStream(device.index()).synchronize();
}
#endif

}  // namespace speechllm::engine
