#include "streaming/crc32c.h"

#include <array>

namespace speechllm::streaming {
namespace {

constexpr uint32_t kReflectedPolynomial = 0x82F63B78u;

// One table of 256 remainders, byte at a time: an entry of up to 750 x 4096 floats (12 MiB) takes
// a few milliseconds, small beside reading it.
constexpr std::array<uint32_t, 256> MakeTable() {
  std::array<uint32_t, 256> table{};
  for (uint32_t byte = 0; byte < 256; ++byte) {
    uint32_t crc = byte;
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) ? kReflectedPolynomial : 0u);
    table[byte] = crc;
  }
  return table;
}

constexpr std::array<uint32_t, 256> kTable = MakeTable();

}  // namespace

uint32_t Crc32c(absl::string_view data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char c : data) crc = (crc >> 8) ^ kTable[(crc ^ c) & 0xFFu];
  return crc ^ 0xFFFFFFFFu;
}

}  // namespace speechllm::streaming
