// WeightLoader: turns named tensors of a safetensors checkpoint into owned libtorch tensors of the
// requested dtype on the requested device, checking each shape against the config. Without a
// checkpoint it makes random weights of the requested shapes (benchmarks of the 7B shapes need no
// download). Used once at model load on the loading thread.
#ifndef SPEECHLLM_ENGINE_MODEL_WEIGHT_LOADER_H_
#define SPEECHLLM_ENGINE_MODEL_WEIGHT_LOADER_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "engine/model/safetensors.h"

namespace speechllm::engine {

// Maps a runtime dtype name ("float32", "bfloat16", "float16") to a torch scalar type.
absl::StatusOr<at::ScalarType> ParseScalarType(const std::string& dtype);

// Owned copy of a view as a CPU tensor of its own dtype (F32/F16/BF16/F64/I64/I32/I16/I8/U8/BOOL).
at::Tensor TensorFromView(const TensorView& view);

// Accepts the two decoder nestings of published checkpoints (language_model.model.* and
// transformers-5's language_model.model.model.*).
class WeightLoader {
 public:
  WeightLoader(const SafetensorsCheckpoint* checkpoint, at::ScalarType dtype, at::Device device)
      : checkpoint_(checkpoint), dtype_(dtype), device_(device) {}
  // Random weights, generated on `device`: normal(0, 0.02) as transformers initialises them, norm
  // weights 1 and norm biases 0 (so activations stay in range in bf16). Deterministic for a seed.
  static WeightLoader Random(uint64_t seed, at::ScalarType dtype, at::Device device);

  at::ScalarType dtype() const { return dtype_; }
  at::Device device() const { return device_; }

  // The tensor `name` converted to the loader's dtype and device. NOT_FOUND naming the tensor when
  // it is absent (under every accepted nesting), INVALID_ARGUMENT when its shape is not
  // `expected_shape`.
  absl::StatusOr<at::Tensor> Load(const std::string& name,
                                  const std::vector<int64_t>& expected_shape) const;
  bool Contains(const std::string& name) const;
  // Checkpoint tensors no Load() has read so far, sorted (empty for random weights).
  std::vector<std::string> UnloadedNames() const;

 private:
  // `name` as stored in the checkpoint (after trying the alternative nestings), or empty.
  std::string Resolve(const std::string& name) const;

  const SafetensorsCheckpoint* checkpoint_;
  uint64_t seed_ = 0;  // random weights when checkpoint_ is null
  at::ScalarType dtype_;
  at::Device device_;
  // Stored names Load() has read (the loading thread only; Load is const for its callers).
  mutable absl::flat_hash_set<std::string> loaded_names_;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_WEIGHT_LOADER_H_
