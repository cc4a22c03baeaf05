// Device-clock timing of work enqueued on a CUDA stream, as a CUDA graph replay would run it: a
// sleep kernel holds the stream while the host enqueues every repetition, so the figure leaves out
// the host's launch gaps. Used to choose between kernels at model load (engine/model/
// linear_tuning.h). Torch- and CUDA-header-free; called on the model thread, blocks until done.
#ifndef SPEECHLLM_ENGINE_CUDA_STREAM_TIMER_H_
#define SPEECHLLM_ENGINE_CUDA_STREAM_TIMER_H_

#include <functional>

namespace speechllm::engine::cuda {

// Runs `enqueue` `reps` times on `stream` (cudaStream_t; null = the legacy default stream; what
// `enqueue` launches must go to that stream) after a `hold_us` sleep kernel, and sets `*ms_per_rep`
// to the device time between the first and the last repetition over `reps`. An error message or
// null.
const char* TimeOnStream(void* stream, int reps, int hold_us, const std::function<void()>& enqueue,
                         float* ms_per_rep);

}  // namespace speechllm::engine::cuda

#endif  // SPEECHLLM_ENGINE_CUDA_STREAM_TIMER_H_
