#include "engine/model/tensor_view.h"

#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace speechllm::engine {
namespace {

template <typename T>
T LoadLittleEndian(const uint8_t* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));  // x86-64 and aarch64 Linux are little-endian
  return value;
}

}  // namespace

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kF64:
    case DType::kI64:
      return 8;
    case DType::kF32:
    case DType::kI32:
      return 4;
    case DType::kF16:
    case DType::kBF16:
    case DType::kI16:
      return 2;
    case DType::kI8:
    case DType::kU8:
    case DType::kBool:
      return 1;
  }
  return 0;
}

absl::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return "F64";
    case DType::kF32:
      return "F32";
    case DType::kF16:
      return "F16";
    case DType::kBF16:
      return "BF16";
    case DType::kI64:
      return "I64";
    case DType::kI32:
      return "I32";
    case DType::kI16:
      return "I16";
    case DType::kI8:
      return "I8";
    case DType::kU8:
      return "U8";
    case DType::kBool:
      return "BOOL";
  }
  return "?";
}

absl::StatusOr<DType> ParseDType(absl::string_view name) {
  for (DType d : {DType::kF64, DType::kF32, DType::kF16, DType::kBF16, DType::kI64, DType::kI32,
                  DType::kI16, DType::kI8, DType::kU8, DType::kBool}) {
    if (DTypeName(d) == name) return d;
  }
  return absl::InvalidArgumentError(absl::StrCat("unsupported safetensors dtype \"", name, "\""));
}

float BFloat16ToFloat(uint16_t bits) {
  uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float out;
  std::memcpy(&out, &wide, sizeof(out));
  return out;
}

float Float16ToFloat(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  uint32_t exponent = (bits >> 10) & 0x1fu;
  uint32_t mantissa = bits & 0x3ffu;
  uint32_t wide;
  if (exponent == 0) {
    if (mantissa == 0) {
      wide = sign;
    } else {  // subnormal: normalise
      exponent = 127 - 15 + 1;
      while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        --exponent;
      }
      mantissa &= 0x3ffu;
      wide = sign | (exponent << 23) | (mantissa << 13);
    }
  } else if (exponent == 0x1f) {
    wide = sign | 0x7f800000u | (mantissa << 13);
  } else {
    wide = sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);
  }
  float out;
  std::memcpy(&out, &wide, sizeof(out));
  return out;
}

uint16_t FloatToBFloat16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  const uint32_t rounding_bias = 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>((bits + rounding_bias) >> 16);
}

int64_t TensorView::NumElements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string TensorView::ShapeString() const {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

std::vector<float> TensorView::ToFloat32() const {
  const int64_t n = NumElements();
  std::vector<float> out(static_cast<size_t>(n));
  const size_t step = DTypeSize(dtype);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* p = data + static_cast<size_t>(i) * step;
    float v = 0;
    switch (dtype) {
      case DType::kF64:
        v = static_cast<float>(LoadLittleEndian<double>(p));
        break;
      case DType::kF32:
        v = LoadLittleEndian<float>(p);
        break;
      case DType::kF16:
        v = Float16ToFloat(LoadLittleEndian<uint16_t>(p));
        break;
      case DType::kBF16:
        v = BFloat16ToFloat(LoadLittleEndian<uint16_t>(p));
        break;
      case DType::kI64:
        v = static_cast<float>(LoadLittleEndian<int64_t>(p));
        break;
      case DType::kI32:
        v = static_cast<float>(LoadLittleEndian<int32_t>(p));
        break;
      case DType::kI16:
        v = static_cast<float>(LoadLittleEndian<int16_t>(p));
        break;
      case DType::kI8:
        v = static_cast<float>(LoadLittleEndian<int8_t>(p));
        break;
      case DType::kU8:
      case DType::kBool:
        v = static_cast<float>(*p);
        break;
    }
    out[static_cast<size_t>(i)] = v;
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> TensorView::ToInt64() const {
  const int64_t n = NumElements();
  std::vector<int64_t> out(static_cast<size_t>(n));
  const size_t step = DTypeSize(dtype);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* p = data + static_cast<size_t>(i) * step;
    switch (dtype) {
      case DType::kI64:
        out[i] = LoadLittleEndian<int64_t>(p);
        break;
      case DType::kI32:
        out[i] = LoadLittleEndian<int32_t>(p);
        break;
      case DType::kI16:
        out[i] = LoadLittleEndian<int16_t>(p);
        break;
      case DType::kI8:
        out[i] = LoadLittleEndian<int8_t>(p);
        break;
      case DType::kU8:
      case DType::kBool:
        out[i] = *p;
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\" has floating dtype ",
                                                       DTypeName(dtype),
                                                       ", expected an integer dtype"));
    }
  }
  return out;
}

}  // namespace speechllm::engine
