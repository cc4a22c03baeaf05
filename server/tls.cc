#include "server/tls.h"

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/auth.h"

namespace speechllm::server {

absl::StatusOr<std::string> ReadPemFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream contents;
  contents << in.rdbuf();
  if (!absl::StrContains(contents.str(), "-----BEGIN ")) {
    return absl::InvalidArgumentError(absl::StrCat(path, " holds no PEM block"));
  }
  return contents.str();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> BuildServerCredentials(
    const ServerConfig& config, Metrics* metrics) {
  if (!config.tls()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  auto cert = ReadPemFile(config.tls_cert_path);
  if (!cert.ok()) return cert.status();
  auto key = ReadPemFile(config.tls_key_path);
  if (!key.ok()) return key.status();
  pair.cert_chain = *std::move(cert);
  pair.private_key = *std::move(key);
  options.pem_key_cert_pairs.push_back(std::move(pair));
  if (!config.tls_client_ca_path.empty()) {
    auto ca = ReadPemFile(config.tls_client_ca_path);
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *std::move(ca);
    // A client without a certificate signed by this CA fails the handshake.
    options.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  std::shared_ptr<grpc::ServerCredentials> credentials = grpc::SslServerCredentials(options);
  if (credentials == nullptr) return absl::InvalidArgumentError("gRPC refused the TLS settings");
  if (config.auth_required()) {
    auto tokens = ReadTokenFile(config.token_file);
    if (!tokens.ok()) return tokens.status();
    TokenAuthProcessor::Options auth;
    auth.exempt_health = config.auth_exempt_health;
    auth.exempt_reflection = config.auth_exempt_reflection;
    credentials->SetAuthMetadataProcessor(
        std::make_shared<TokenAuthProcessor>(*std::move(tokens), auth, metrics));
  }
  return credentials;
}

}  // namespace speechllm::server
