// Safetensors checkpoint reader: one memory-mapped file or a sharded checkpoint. Returns
// TensorViews into the mappings; the SafetensorsFile/SafetensorsCheckpoint object owns them and
// must outlive every view. Opened once at model load on the loading thread; afterwards read-only
// and safe to share. Format: https://github.com/huggingface/safetensors (8-byte little-endian
// header length, JSON header, raw little-endian data; offsets relative to the header's end).
#ifndef SPEECHLLM_ENGINE_MODEL_SAFETENSORS_H_
#define SPEECHLLM_ENGINE_MODEL_SAFETENSORS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/model/tensor_view.h"

namespace speechllm::engine {

// One memory-mapped .safetensors file.
class SafetensorsFile {
 public:
  // Maps `path` and validates its header: NOT_FOUND if the file is missing, DATA_LOSS for a
  // truncated file, a header that is not JSON, a tensor whose byte range is outside the file or
  // does not match its dtype and shape, INVALID_ARGUMENT for an unsupported dtype.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);

  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  // Tensor names in header order (sorted by the writer; "__metadata__" excluded).
  std::vector<std::string> Names() const;
  bool Contains(absl::string_view name) const;
  // NOT_FOUND (naming the tensor and the file) if absent.
  absl::StatusOr<TensorView> Get(absl::string_view name) const;
  // The free-form "__metadata__" string map (empty if absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;

  std::string path_;
  void* mapping_ = nullptr;
  size_t mapping_bytes_ = 0;
  std::map<std::string, TensorView, std::less<>> tensors_;
  std::vector<std::string> order_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint: a directory with model.safetensors.index.json (sharded) or model.safetensors, or a
// single .safetensors file path.
class SafetensorsCheckpoint {
 public:
  // NOT_FOUND if neither an index nor model.safetensors exists; errors of SafetensorsFile::Open for
  // a bad shard; DATA_LOSS if the index names a tensor its shard does not hold or is not valid
  // JSON.
  static absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> Open(const std::string& path);

  std::vector<std::string> Names() const;  // sorted
  bool Contains(absl::string_view name) const;
  absl::StatusOr<TensorView> Get(absl::string_view name) const;
  // Like Get, and also checks the shape: INVALID_ARGUMENT naming tensor, expected and actual shape.
  absl::StatusOr<TensorView> GetWithShape(absl::string_view name,
                                          const std::vector<int64_t>& expected_shape) const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*, std::less<>> owner_;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_SAFETENSORS_H_
