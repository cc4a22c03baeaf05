// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of embedding cache entries
// (ARCHITECTURE.md 8). A plain function over bytes; any thread.
#ifndef SPEECHLLM_STREAMING_CRC32C_H_
#define SPEECHLLM_STREAMING_CRC32C_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace speechllm::streaming {

// The CRC-32C of `data` (initial value and final xor 0xFFFFFFFF, as RFC 3720 B.4); "123456789"
// gives 0xE3069283.
// x86-64 hosts with SSE 4.2 use its crc32 instruction; others a table.
uint32_t Crc32c(absl::string_view data);

// The same by the table alone (tests compare the two paths).
uint32_t Crc32cByTable(absl::string_view data);

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_CRC32C_H_
