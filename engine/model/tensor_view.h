// TensorView: a typed, shaped, non-owning view of tensor bytes (for example inside a memory-mapped
// safetensors file), plus the element types the project reads and writes. Torch-free, so readers,
// writers and their tests build without libtorch. Views are immutable and safe to share across
// threads as long as the owner of the bytes (SafetensorsFile) outlives them.
#ifndef SPEECHLLM_ENGINE_MODEL_TENSOR_VIEW_H_
#define SPEECHLLM_ENGINE_MODEL_TENSOR_VIEW_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace speechllm::engine {

// Element types of the safetensors format that the project understands.
enum class DType { kF64, kF32, kF16, kBF16, kI64, kI32, kI16, kI8, kU8, kBool };

// Size of one element in bytes.
size_t DTypeSize(DType dtype);
// The safetensors spelling ("F32", "BF16", ...).
absl::string_view DTypeName(DType dtype);
// Parses a safetensors dtype string; INVALID_ARGUMENT for unknown names.
absl::StatusOr<DType> ParseDType(absl::string_view name);

// Converts one bfloat16 / IEEE half value (raw bits) to float.
float BFloat16ToFloat(uint16_t bits);
float Float16ToFloat(uint16_t bits);
// Rounds a float to bfloat16 bits (round to nearest even, NaN kept), as torch does.
uint16_t FloatToBFloat16(float value);

struct TensorView {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // not owned; little-endian, row-major
  size_t num_bytes = 0;

  int64_t NumElements() const;
  std::string ShapeString() const;  // "[2, 128, 3000]"
  // Copies the elements as float32 (any floating or integer dtype).
  std::vector<float> ToFloat32() const;
  // Copies the elements as int64 (integer or bool dtypes; INVALID_ARGUMENT for floating ones).
  absl::StatusOr<std::vector<int64_t>> ToInt64() const;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_TENSOR_VIEW_H_
