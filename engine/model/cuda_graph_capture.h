// CUDA graph capture shared by DecodeGraphs and EncoderGraphs: whether this build and a device can
// capture graphs, and GraphCapturer, which owns one memory pool and one side stream for a family of
// graphs and captures a recording with the allocator cleanup of graph_capture_cleanup.h. Each
// graph family owns its capturer; used on the thread that runs the model.
#ifndef SPEECHLLM_ENGINE_MODEL_CUDA_GRAPH_CAPTURE_H_
#define SPEECHLLM_ENGINE_MODEL_CUDA_GRAPH_CAPTURE_H_

#include <ATen/ATen.h>

// Graphs need the CUDA libtorch (at::cuda::CUDAGraph, streams, events) and the project's kernels
// (a captured pass must be free of host synchronisation). Debian's CPU libtorch ships the c10/cuda
// headers without their generated configuration header, which is how its builds are told apart.
#if SPEECHLLM_CUDA_KERNELS && !defined(SPEECHLLM_NO_CUDA_GRAPHS) && \
    __has_include(<c10/cuda/impl/cuda_cmake_macros.h>)
#define SPEECHLLM_HAVE_CUDA_GRAPHS 1
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAStream.h>

#include <functional>
#include <optional>
#include <utility>  // std::declval

#include "engine/model/graph_capture_cleanup.h"
#else
#define SPEECHLLM_HAVE_CUDA_GRAPHS 0
#endif

namespace speechllm::engine {

// True when this build has CUDA graph support, the project's kernels are on for `device`
// (CudaKernelsEnabled) and SPEECHLLM_CUDA_GRAPHS is not "0".
bool CudaGraphsEnabled(at::Device device);

#if SPEECHLLM_HAVE_CUDA_GRAPHS
// The memory pool id type, named through CUDAGraph::pool(): libtorch moved it from c10::cuda to
// c10.
using GraphPoolId = decltype(std::declval<at::cuda::CUDAGraph&>().pool());
using CapturedGraph = PoolAwareGraph<at::cuda::CUDAGraph>;

class GraphCapturer {
 public:
  GraphCapturer() = default;
  GraphCapturer(const GraphCapturer&) = delete;
  GraphCapturer& operator=(const GraphCapturer&) = delete;

  // Runs `record` once on the capture stream as a warm-up (cuBLAS handles and workspaces are then
  // created outside the capture), empties the allocator's cache, then runs it again under capture
  // into `graph`. Every graph of one
  // capturer shares its memory pool, so their replays must not overlap and a graph's outputs are
  // valid only until another graph of the family replays. Throws c10::Error when the runtime
  // refuses the capture, after putting the caching allocator back.
  void Capture(at::Device device, CapturedGraph* graph, const std::function<void()>& record);

 private:
  // Taken from graph_pool_handle() before the first capture rather than from the first graph, so
  // that a capture that fails is undone with a known pool.
  GraphPoolId pool_{0, 0};
  // One side stream for every capture: the caching allocator reuses a freed block only on the
  // stream it was freed on, so the graphs share the pool's memory only when captured on one stream
  // (torch.cuda.graph keeps one capture stream for the same reason).
  std::optional<c10::cuda::CUDAStream> stream_;
};
#endif

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_CUDA_GRAPH_CAPTURE_H_
