// SafetensorsWriter: collects named tensors (dtype, shape, bytes) and writes one .safetensors file
// (header keys sorted, data 8-byte aligned by padding the header with spaces, as the reference
// writer does). Used by tests to build checkpoints and malformed files, and by the trainer to save
// weights. Single-threaded: owned by whoever builds the file.
#ifndef SPEECHLLM_ENGINE_MODEL_SAFETENSORS_WRITER_H_
#define SPEECHLLM_ENGINE_MODEL_SAFETENSORS_WRITER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/model/tensor_view.h"

namespace speechllm::engine {

class SafetensorsWriter {
 public:
  // Adds a tensor; `bytes` must hold NumElements(shape) * DTypeSize(dtype) bytes (INVALID_ARGUMENT
  // otherwise, or if the name is already present).
  absl::Status Add(const std::string& name, DType dtype, std::vector<int64_t> shape,
                   std::string bytes);
  absl::Status AddFloat32(const std::string& name, std::vector<int64_t> shape,
                          const std::vector<float>& values);
  absl::Status AddInt32(const std::string& name, std::vector<int64_t> shape,
                        const std::vector<int32_t>& values);
  void SetMetadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  // The complete file contents.
  std::string Serialize() const;
  // Writes to `path` through a temporary file and a rename.
  absl::Status WriteFile(const std::string& path) const;

 private:
  struct Entry {
    DType dtype;
    std::vector<int64_t> shape;
    std::string bytes;
  };
  std::map<std::string, Entry> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_SAFETENSORS_WRITER_H_
