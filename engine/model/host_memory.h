// Host memory available to this process: /proc/meminfo's MemAvailable, lowered to what a cgroup
// memory limit leaves (a container's limit, not the machine's; v1 or v2). Torch-free; read once by
// the model runner at creation (the server's main thread). The parsers are separate for tests.
#ifndef SPEECHLLM_ENGINE_MODEL_HOST_MEMORY_H_
#define SPEECHLLM_ENGINE_MODEL_HOST_MEMORY_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace speechllm::engine {

// The "MemAvailable:" line of /proc/meminfo text, in bytes; -1 when absent or malformed.
int64_t ParseMemAvailableBytes(absl::string_view meminfo);

// What a cgroup limit leaves: its limit (v2 memory.max, v1 memory.limit_in_bytes) minus its use
// (memory.current, memory.usage_in_bytes) less the reclaimable file cache in `memory_stat` (v2
// "inactive_file", v1 "total_inactive_file", as docker stats and the kubelet count it; a group
// whose read files filled its limit is not out of memory), 0 when over, in bytes; -1 when the
// limit is "max" (no limit) or the limit or use is malformed (a missing stat counts no cache).
int64_t CgroupAvailableBytes(absl::string_view memory_max, absl::string_view memory_current,
                             absl::string_view memory_stat = "");

// The value of `key` ("inactive_file") in cgroup memory.stat text; 0 when absent or malformed.
int64_t ParseCgroupStat(absl::string_view memory_stat, absl::string_view key);

// The smallest of these for this process, read from /proc and /sys/fs/cgroup; -1 when none can
// be read.
int64_t HostAvailableMemoryBytes();

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_HOST_MEMORY_H_
