// Port files (port_file.h).
#include "server/port_file.h"

#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/str_cat.h"

namespace speechllm::server {

absl::Status WritePortFile(const std::string& path, int port) {
  if (path.empty()) return absl::OkStatus();
  {
    std::ofstream out(path + ".tmp");
    out << port << "\n";
    if (!out.flush())
      return absl::PermissionDeniedError(absl::StrCat("cannot write ", path, ".tmp"));
  }
  std::error_code error;
  std::filesystem::rename(path + ".tmp", path, error);
  if (error) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot rename ", path, ".tmp to ", path, ": ", error.message()));
  }
  return absl::OkStatus();
}

}  // namespace speechllm::server
