// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of embedding cache entries
// (ARCHITECTURE.md 8). A plain function over bytes; any thread.
#ifndef SPEECHLLM_STREAMING_CRC32C_H_
#define SPEECHLLM_STREAMING_CRC32C_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace speechllm::streaming {

// The CRC-32C of `data` (initial value and final xor 0xFFFFFFFF, as RFC 3720 B.4); "123456789"
// gives 0xE3069283.
uint32_t Crc32c(absl::string_view data);

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_CRC32C_H_
