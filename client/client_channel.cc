#include "client/client_channel.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace speechllm::client {
namespace {

// The file's contents into `out`; empty path: leaves `out` empty.
absl::Status ReadOptionalFile(const std::string& path, std::string* out) {
  if (path.empty()) return absl::OkStatus();
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  *out = contents.str();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateClientChannel(
    const std::string& target, const ChannelSecurity& security, grpc::ChannelArguments arguments) {
  if (!security.UsesTls()) {
    return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments);
  }
  if (security.tls_cert_path.empty() != security.tls_key_path.empty()) {
    return absl::InvalidArgumentError("a client certificate needs its key, and the reverse");
  }
  grpc::SslCredentialsOptions options;
  for (auto [path, field] : {std::pair{&security.tls_ca_path, &options.pem_root_certs},
                             std::pair{&security.tls_cert_path, &options.pem_cert_chain},
                             std::pair{&security.tls_key_path, &options.pem_private_key}}) {
    if (absl::Status status = ReadOptionalFile(*path, field); !status.ok()) return status;
    // Not PEM: gRPC logged its own errors and the call failed later with "empty address list".
    if (!path->empty() && field->find("-----BEGIN ") == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(*path, " is not PEM (no \"-----BEGIN \" line)"));
    }
  }
  if (!security.tls_server_name.empty()) {
    arguments.SetSslTargetNameOverride(security.tls_server_name);
  }
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(options), arguments);
}

}  // namespace speechllm::client
