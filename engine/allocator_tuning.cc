#include "engine/allocator_tuning.h"

#include <malloc.h>

namespace speechllm::engine {

void TuneAllocatorForTensors() {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

}  // namespace speechllm::engine
