// Server credentials for the gRPC port, built once by main.cc at start-up from ServerConfig:
// plaintext, or TLS from PEM files, requiring and verifying client certificates when a client CA
// is given (mutual TLS), with the TokenAuthProcessor attached when a token file is configured.
// Not thread-safe; call before the server starts.
#ifndef SPEECHLLM_SERVER_TLS_H_
#define SPEECHLLM_SERVER_TLS_H_

#include <memory>
#include <string>

#include <grpcpp/security/server_credentials.h>

#include "absl/status/statusor.h"
#include "server/metrics.h"
#include "server/server_config.h"

namespace speechllm::server {

// The whole file; NOT_FOUND when unreadable, INVALID_ARGUMENT when it holds no PEM block.
absl::StatusOr<std::string> ReadPemFile(const std::string& path);

// Plaintext without tls_cert_path; otherwise TLS (and mTLS, and token auth) as configured.
// `metrics` (not owned, may be null) counts auth refusals. Errors name the file at fault.
// OK when `key_pem` parses and is the private key of the first certificate in `cert_pem`;
// otherwise INVALID_ARGUMENT naming the file at fault (OpenSSL, as gRPC uses).
absl::Status CheckKeyPair(const std::string& cert_pem, const std::string& key_pem,
                          const std::string& cert_path, const std::string& key_path);

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> BuildServerCredentials(
    const ServerConfig& config, Metrics* metrics);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_TLS_H_
