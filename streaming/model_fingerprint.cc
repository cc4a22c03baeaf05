#include "streaming/model_fingerprint.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "streaming/embedding_cache_entry.h"

namespace speechllm::streaming {
namespace {

namespace fs = std::filesystem;

constexpr int kSamples = 16;
constexpr int64_t kSampleBytes = 64 * 1024;

// Appends `length` bytes of `in` from `offset` (fewer at the end of the file).
void AppendRange(std::ifstream& in, int64_t offset, int64_t length, std::string* out) {
  in.clear();
  in.seekg(offset);
  std::string bytes(static_cast<size_t>(length), '\0');
  in.read(bytes.data(), length);
  bytes.resize(static_cast<size_t>(std::max<std::streamsize>(0, in.gcount())));
  out->append(bytes);
}

}  // namespace

absl::StatusOr<std::string> ModelFingerprint(const std::string& model_dir,
                                             absl::string_view projector) {
  std::vector<std::string> files;
  std::error_code error;
  for (fs::directory_iterator it(model_dir, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (absl::EndsWith(name, ".safetensors")) files.push_back(name);
  }
  if (error) {
    return absl::NotFoundError(absl::StrCat("cannot list ", model_dir, ": ", error.message()));
  }
  if (files.empty()) {
    return absl::NotFoundError(absl::StrCat("no .safetensors file in ", model_dir));
  }
  std::sort(files.begin(), files.end());
  std::string digest_input = absl::StrCat("projector=", projector, "\n");
  {
    std::ifstream config(model_dir + "/config.json", std::ios::binary);
    std::ostringstream text;
    text << config.rdbuf();
    absl::StrAppend(&digest_input, "config.json\n", text.str(), "\n");
  }
  for (const std::string& name : files) {
    const std::string path = model_dir + "/" + name;
    std::ifstream in(path, std::ios::binary);
    const int64_t size = static_cast<int64_t>(fs::file_size(path, error));
    uint64_t header_bytes = 0;
    if (!in || error || size < 8 || !in.read(reinterpret_cast<char*>(&header_bytes), 8) ||
        header_bytes > static_cast<uint64_t>(size - 8)) {
      return absl::DataLossError(absl::StrCat(path, " is too short for its safetensors header"));
    }
    absl::StrAppend(&digest_input, name, " ", size, "\n");
    AppendRange(in, 8, static_cast<int64_t>(header_bytes), &digest_input);
    const int64_t data_begin = 8 + static_cast<int64_t>(header_bytes);
    const int64_t data_bytes = size - data_begin;
    for (int i = 0; i < kSamples && data_bytes > 0; ++i) {
      const int64_t offset = data_begin + data_bytes * i / kSamples;
      AppendRange(in, offset, std::min(kSampleBytes, size - offset), &digest_input);
    }
  }
  return Sha256Hex(digest_input);
}

}  // namespace speechllm::streaming
