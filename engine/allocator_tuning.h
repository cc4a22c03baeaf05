// TuneAllocatorForTensors: glibc malloc settings for a process that allocates and frees many
// megabyte-sized temporary tensors per step. By default glibc serves blocks above its (adaptive)
// mmap threshold with fresh mmaps, so every step pays page faults and page zeroing for its
// temporaries (measured: a batch-16 decode step of the tiny model 12 ms -> 3 ms, a 30 s encode 246
// ms -> 67 ms). Call once at start-up from main(), before other threads exist.
#ifndef SPEECHLLM_ENGINE_ALLOCATOR_TUNING_H_
#define SPEECHLLM_ENGINE_ALLOCATOR_TUNING_H_

namespace speechllm::engine {

// Serves allocations below 256 MiB from the heap and keeps up to 512 MiB of freed heap memory for
// reuse (weights and the KV pool, far larger, still get their own mappings).
void TuneAllocatorForTensors();

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_ALLOCATOR_TUNING_H_
