#include "engine/model/weight_loader.h"

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "engine/status_macros.h"

namespace speechllm::engine {
namespace {

at::ScalarType ToScalarType(DType dtype) {
  switch (dtype) {
    case DType::kF64:
      return at::kDouble;
    case DType::kF32:
      return at::kFloat;
    case DType::kF16:
      return at::kHalf;
    case DType::kBF16:
      return at::kBFloat16;
    case DType::kI64:
      return at::kLong;
    case DType::kI32:
      return at::kInt;
    case DType::kI16:
      return at::kShort;
    case DType::kI8:
      return at::kChar;
    case DType::kU8:
      return at::kByte;
    case DType::kBool:
      return at::kBool;
  }
  return at::kFloat;
}

}  // namespace

absl::StatusOr<at::ScalarType> ParseScalarType(const std::string& dtype) {
  if (dtype == "float32") return at::kFloat;
  if (dtype == "bfloat16") return at::kBFloat16;
  if (dtype == "float16") return at::kHalf;
  return absl::InvalidArgumentError(absl::StrCat("unsupported dtype \"", dtype, "\""));
}

at::Tensor TensorFromView(const TensorView& view) {
  // from_blob wants a mutable pointer; the mapping is read-only and the clone copies before any
  // write.
  void* data = const_cast<uint8_t*>(view.data);
  return at::from_blob(data, view.shape, at::TensorOptions().dtype(ToScalarType(view.dtype)))
      .clone();
}

std::string WeightLoader::Resolve(const std::string& name) const {
  if (checkpoint_->Contains(name)) return name;
  // transformers 5.x re-saves the decoder one level deeper (MODEL.md 6.2).
  constexpr absl::string_view kDecoderPrefix = "language_model.model.";
  if (absl::StartsWith(name, kDecoderPrefix)) {
    const std::string nested =
        absl::StrCat("language_model.model.model.", absl::StripPrefix(name, kDecoderPrefix));
    if (checkpoint_->Contains(nested)) return nested;
  }
  if (name == "language_model.lm_head.weight" &&
      checkpoint_->Contains("language_model.model.lm_head.weight")) {
    return "language_model.model.lm_head.weight";
  }
  return "";
}

bool WeightLoader::Contains(const std::string& name) const { return !Resolve(name).empty(); }

absl::StatusOr<at::Tensor> WeightLoader::Load(const std::string& name,
                                              const std::vector<int64_t>& expected_shape) const {
  const std::string stored = Resolve(name);
  if (stored.empty())
    return absl::NotFoundError(absl::StrCat("checkpoint has no tensor \"", name, "\""));
  SPEECHLLM_ASSIGN_OR_RETURN(TensorView view, checkpoint_->GetWithShape(stored, expected_shape));
  if (view.dtype != DType::kF32 && view.dtype != DType::kBF16 && view.dtype != DType::kF16) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", stored, "\" has dtype ",
                                                   DTypeName(view.dtype),
                                                   "; weights must be F32, BF16 or F16"));
  }
  try {
    return TensorFromView(view).to(device_, dtype_).contiguous();
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("loading \"", stored, "\": ", e.what_without_backtrace()));
  }
}

}  // namespace speechllm::engine
