#include "engine/model/safetensors_writer.h"

#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace speechllm::engine {

absl::Status SafetensorsWriter::Add(const std::string& name, DType dtype,
                                    std::vector<int64_t> shape, std::string bytes) {
  if (name.empty() || name == "__metadata__")
    return absl::InvalidArgumentError("invalid tensor name");
  if (tensors_.count(name) != 0)
    return absl::InvalidArgumentError(absl::StrCat("duplicate tensor \"", name, "\""));
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (bytes.size() != static_cast<size_t>(n) * DTypeSize(dtype)) {
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\": ", bytes.size(),
                                                   " bytes for ", n, " elements of ",
                                                   DTypeName(dtype)));
  }
  tensors_[name] = Entry{dtype, std::move(shape), std::move(bytes)};
  return absl::OkStatus();
}

absl::Status SafetensorsWriter::AddFloat32(const std::string& name, std::vector<int64_t> shape,
                                           const std::vector<float>& values) {
  std::string bytes(values.size() * sizeof(float), '\0');
  if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return Add(name, DType::kF32, std::move(shape), std::move(bytes));
}

absl::Status SafetensorsWriter::AddInt32(const std::string& name, std::vector<int64_t> shape,
                                         const std::vector<int32_t>& values) {
  std::string bytes(values.size() * sizeof(int32_t), '\0');
  if (!values.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  return Add(name, DType::kI32, std::move(shape), std::move(bytes));
}

std::string SafetensorsWriter::Serialize() const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const auto& [name, entry] : tensors_) {
    header[name] = {{"dtype", std::string(DTypeName(entry.dtype))},
                    {"shape", entry.shape},
                    {"data_offsets", {offset, offset + entry.bytes.size()}}};
    offset += entry.bytes.size();
  }
  std::string header_text = header.dump();
  while ((8 + header_text.size()) % 8 != 0) header_text.push_back(' ');
  const uint64_t header_bytes = header_text.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &header_bytes, 8);
  out += header_text;
  for (const auto& [name, entry] : tensors_) out += entry.bytes;
  return out;
}

absl::Status SafetensorsWriter::WriteFile(const std::string& path) const {
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", temp));
    const std::string data = Serialize();
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out) return absl::DataLossError(absl::StrCat("short write to ", temp));
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot rename ", temp, " to ", path));
  }
  return absl::OkStatus();
}

}  // namespace speechllm::engine
