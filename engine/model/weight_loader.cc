#include "engine/model/weight_loader.h"

#include <ATen/Context.h>

#include <mutex>

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

WeightLoader WeightLoader::Random(uint64_t seed, at::ScalarType dtype, at::Device device) {
  WeightLoader loader(nullptr, dtype, device);
  loader.seed_ = seed;
  return loader;
}

std::vector<std::string> WeightLoader::UnloadedNames() const {
  std::vector<std::string> unloaded;
  if (checkpoint_ == nullptr) return unloaded;
  for (std::string& name : checkpoint_->Names()) {
    if (!loaded_names_.contains(name)) unloaded.push_back(std::move(name));
  }
  return unloaded;
}

bool WeightLoader::Contains(const std::string& name) const {
  return checkpoint_ == nullptr || !Resolve(name).empty();  // random weights exist under every name
}

absl::StatusOr<at::Tensor> WeightLoader::Load(const std::string& name,
                                              const std::vector<int64_t>& expected_shape) const {
  if (checkpoint_ == nullptr) {
    try {
      const auto options = at::TensorOptions().dtype(dtype_).device(device_);
      const bool norm = absl::StrContains(name, "norm");
      if (norm)
        return absl::EndsWith(name, ".bias") ? at::zeros(expected_shape, options)
                                             : at::ones(expected_shape, options);
      // One generator per tensor, seeded from the name, so a weight does not depend on load order.
      at::Generator generator = at::globalContext().defaultGenerator(device_);
      {
        std::lock_guard<std::mutex> lock(generator.mutex());
        generator.set_current_seed(seed_ ^ std::hash<std::string>{}(name));
      }
      return at::normal(0.0, 0.02, expected_shape, generator, options.dtype(at::kFloat)).to(dtype_);
    } catch (const c10::Error& e) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot make random \"", name, "\": ", e.what_without_backtrace()));
    }
  }
  const std::string stored = Resolve(name);
  if (stored.empty())
    return absl::NotFoundError(absl::StrCat("checkpoint has no tensor \"", name, "\""));
  SPEECHLLM_ASSIGN_OR_RETURN(TensorView view, checkpoint_->GetWithShape(stored, expected_shape));
  loaded_names_.insert(stored);
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
