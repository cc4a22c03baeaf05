#include "engine/model/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <unordered_set>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"
#include "nlohmann/json.hpp"

namespace speechllm::engine {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// Upper bound on the JSON header (the format's own limit is 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

absl::Status HeaderError(const std::string& path, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("safetensors file ", path, ": ", what));
}

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat("no such file: ", path));
    return absl::PermissionDeniedError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(err)));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("cannot stat ", path));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return HeaderError(path, "not a regular file");
  }
  const uint64_t file_bytes = static_cast<uint64_t>(st.st_size);
  if (file_bytes < 8) {
    ::close(fd);
    return HeaderError(path, absl::StrCat("file is ", file_bytes,
                                          " bytes, shorter than the 8-byte header length"));
  }
  void* mapping = ::mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (mapping == MAP_FAILED) {
    return absl::InternalError(absl::StrCat("mmap of ", path, " failed: ", std::strerror(errno)));
  }
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->mapping_ = mapping;
  file->mapping_bytes_ = file_bytes;
  const uint8_t* base = static_cast<const uint8_t*>(mapping);

  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, base, 8);
  if (header_bytes > kMaxHeaderBytes || header_bytes > file_bytes - 8) {
    return HeaderError(
        path, absl::StrCat("header length ", header_bytes, " exceeds the file (", file_bytes,
                           " bytes): truncated or not a safetensors file"));
  }
  json header;
  // A name given twice: JSON keeps the last, and the first one's bytes would then be reported as
  // a gap between tensors. Named instead (keys of the top-level object are at depth 1).
  std::string duplicate;
  std::unordered_set<std::string> names;
  const json::parser_callback_t note_duplicates = [&](int depth, json::parse_event_t event,
                                                      json& parsed) {
    if (event == json::parse_event_t::key && depth == 1 && duplicate.empty() &&
        !names.insert(parsed.get<std::string>()).second) {
      duplicate = parsed.get<std::string>();
    }
    return true;
  };
  try {
    header = json::parse(reinterpret_cast<const char*>(base + 8),
                         reinterpret_cast<const char*>(base + 8 + header_bytes), note_duplicates);
  } catch (const json::exception& e) {
    return HeaderError(path, absl::StrCat("header is not valid JSON (", e.what(), ")"));
  }
  if (!duplicate.empty()) {
    return HeaderError(path, absl::StrCat("header names tensor \"", duplicate, "\" twice"));
  }
  if (!header.is_object()) return HeaderError(path, "header is not a JSON object");

  const uint64_t data_begin = 8 + header_bytes;
  const uint64_t data_bytes = file_bytes - data_begin;
  try {
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        if (it.value().is_object()) {
          for (auto m = it.value().begin(); m != it.value().end(); ++m) {
            file->metadata_[m.key()] =
                m.value().is_string() ? m.value().get<std::string>() : m.value().dump();
          }
        }
        continue;
      }
      const json& entry = it.value();
      if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") ||
          !entry.contains("data_offsets")) {
        return HeaderError(
            path, absl::StrCat("tensor \"", it.key(), "\" lacks dtype, shape or data_offsets"));
      }
      TensorView view;
      view.name = it.key();
      SPEECHLLM_ASSIGN_OR_RETURN(view.dtype, ParseDType(entry.at("dtype").get<std::string>()));
      uint64_t num_elements = 1;
      if (!entry.at("shape").is_array()) {
        return HeaderError(path, absl::StrCat("tensor \"", it.key(), "\" shape is not a list"));
      }
      for (const json& d : entry.at("shape")) {
        if (!d.is_number_integer()) {
          return HeaderError(path, absl::StrCat("tensor \"", it.key(),
                                                "\" has a dimension that is not an integer"));
        }
        const int64_t dim = d.get<int64_t>();
        if (dim < 0)
          return HeaderError(path,
                             absl::StrCat("tensor \"", it.key(), "\" has a negative dimension"));
        view.shape.push_back(dim);
        if (dim != 0 &&
            num_elements > std::numeric_limits<uint64_t>::max() / static_cast<uint64_t>(dim)) {
          return HeaderError(path, absl::StrCat("tensor \"", it.key(), "\" shape overflows"));
        }
        num_elements *= static_cast<uint64_t>(dim);
      }
      const json& offsets = entry.at("data_offsets");
      if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
          !offsets[1].is_number_unsigned()) {
        return HeaderError(
            path, absl::StrCat("tensor \"", it.key(), "\" data_offsets is not [begin, end]"));
      }
      const uint64_t begin = offsets[0].get<uint64_t>();
      const uint64_t end = offsets[1].get<uint64_t>();
      if (begin > end || end > data_bytes) {
        return HeaderError(path, absl::StrCat("tensor \"", it.key(), "\" bytes [", begin, ", ", end,
                                              ") lie outside the data section of ", data_bytes,
                                              " bytes: file truncated?"));
      }
      // The element count must fit an int64 (TensorView::NumElements, torch) and its bytes a
      // uint64: a shape of 2^62 float32 would otherwise wrap to 0 bytes and pass.
      uint64_t needed_bytes = 0;
      if (num_elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(num_elements, static_cast<uint64_t>(DTypeSize(view.dtype)),
                                 &needed_bytes)) {
        return HeaderError(path, absl::StrCat("tensor \"", it.key(), "\" shape overflows"));
      }
      if (end - begin != needed_bytes) {
        return HeaderError(
            path, absl::StrCat("tensor \"", it.key(), "\" has ", end - begin, " bytes but ",
                               DTypeName(view.dtype), view.ShapeString(), " needs ", needed_bytes));
      }
      view.data = base + data_begin + begin;
      view.num_bytes = static_cast<size_t>(end - begin);
      file->order_.push_back(view.name);
      file->tensors_.emplace(view.name, std::move(view));
    }
  } catch (const json::exception& e) {
    return HeaderError(path, absl::StrCat("malformed header entry (", e.what(), ")"));
  }
  // As the format's reference reader demands: the tensors tile the data section, in some order,
  // without gaps or overlaps (two tensors sharing bytes would alias each other's weights).
  std::vector<std::pair<uint64_t, const TensorView*>> extents;
  extents.reserve(file->tensors_.size());
  for (const auto& [name, view] : file->tensors_) {
    extents.emplace_back(static_cast<uint64_t>(view.data - (base + data_begin)), &view);
  }
  std::sort(extents.begin(), extents.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second->num_bytes < b.second->num_bytes;
  });
  uint64_t covered = 0;
  for (const auto& [begin, view] : extents) {
    if (begin != covered) {
      return HeaderError(path, absl::StrCat("tensor \"", view->name, "\" starts at byte ", begin,
                                            " of the data section where ", covered,
                                            " was expected: tensors overlap or leave a gap"));
    }
    covered = begin + view->num_bytes;
  }
  if (covered != data_bytes) {
    return HeaderError(path, absl::StrCat("the tensors cover ", covered, " of the data section's ",
                                          data_bytes, " bytes"));
  }
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_bytes_);
}

std::vector<std::string> SafetensorsFile::Names() const { return order_; }

bool SafetensorsFile::Contains(absl::string_view name) const {
  return tensors_.find(name) != tensors_.end();
}

absl::StatusOr<TensorView> SafetensorsFile::Get(absl::string_view name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    return absl::NotFoundError(absl::StrCat("tensor \"", name, "\" not found in ", path_));
  }
  return it->second;
}

absl::StatusOr<std::unique_ptr<SafetensorsCheckpoint>> SafetensorsCheckpoint::Open(
    const std::string& path) {
  auto checkpoint = std::make_unique<SafetensorsCheckpoint>();
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    SPEECHLLM_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open(path));
    for (const std::string& name : file->Names()) checkpoint->owner_[name] = file.get();
    checkpoint->files_.push_back(std::move(file));
    return checkpoint;
  }
  const fs::path dir(path);
  const fs::path index_path = dir / "model.safetensors.index.json";
  if (!fs::exists(index_path, ec)) {
    const fs::path single = dir / "model.safetensors";
    if (!fs::exists(single, ec)) {
      return absl::NotFoundError(
          absl::StrCat("no model.safetensors.index.json or model.safetensors in ", path));
    }
    return Open(single.string());
  }
  std::ifstream in(index_path);
  json index;
  try {
    index = json::parse(in);
  } catch (const json::exception& e) {
    return absl::DataLossError(
        absl::StrCat(index_path.string(), " is not valid JSON (", e.what(), ")"));
  }
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    return absl::DataLossError(absl::StrCat(index_path.string(), " has no \"weight_map\" object"));
  }
  std::map<std::string, const SafetensorsFile*> by_shard;
  for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
    if (!it.value().is_string()) {
      return absl::DataLossError(
          absl::StrCat(index_path.string(), ": weight_map[\"", it.key(), "\"] is not a file name"));
    }
    const std::string shard = it.value().get<std::string>();
    if (shard.find('/') != std::string::npos) {
      return absl::DataLossError(
          absl::StrCat(index_path.string(), ": shard name \"", shard, "\" leaves the directory"));
    }
    auto found = by_shard.find(shard);
    if (found == by_shard.end()) {
      SPEECHLLM_ASSIGN_OR_RETURN(auto file, SafetensorsFile::Open((dir / shard).string()));
      found = by_shard.emplace(shard, file.get()).first;
      checkpoint->files_.push_back(std::move(file));
    }
    if (!found->second->Contains(it.key())) {
      return absl::DataLossError(absl::StrCat("index names tensor \"", it.key(), "\" in ", shard,
                                              ", which does not contain it"));
    }
    checkpoint->owner_[it.key()] = found->second;
  }
  return checkpoint;
}

std::vector<std::string> SafetensorsCheckpoint::Names() const {
  std::vector<std::string> names;
  names.reserve(owner_.size());
  for (const auto& [name, file] : owner_) names.push_back(name);
  return names;
}

bool SafetensorsCheckpoint::Contains(absl::string_view name) const {
  return owner_.find(name) != owner_.end();
}

absl::StatusOr<TensorView> SafetensorsCheckpoint::Get(absl::string_view name) const {
  auto it = owner_.find(name);
  if (it == owner_.end()) {
    return absl::NotFoundError(absl::StrCat("tensor \"", name, "\" not found in the checkpoint"));
  }
  return it->second->Get(name);
}

absl::StatusOr<TensorView> SafetensorsCheckpoint::GetWithShape(
    absl::string_view name, const std::vector<int64_t>& expected_shape) const {
  SPEECHLLM_ASSIGN_OR_RETURN(TensorView view, Get(name));
  if (view.shape != expected_shape) {
    TensorView expected;
    expected.shape = expected_shape;
    return absl::InvalidArgumentError(absl::StrCat("tensor \"", name, "\" has shape ",
                                                   view.ShapeString(), ", the config implies ",
                                                   expected.ShapeString()));
  }
  return view;
}

}  // namespace speechllm::engine
