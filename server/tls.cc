#include "server/tls.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

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

absl::Status CheckKeyPair(const std::string& cert_pem, const std::string& key_pem,
                          const std::string& cert_path, const std::string& key_path) {
  BIO* cert_bio = BIO_new_mem_buf(cert_pem.data(), static_cast<int>(cert_pem.size()));
  X509* cert =
      cert_bio == nullptr ? nullptr : PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  BIO_free(cert_bio);
  if (cert == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(cert_path, " holds no readable certificate"));
  }
  BIO* key_bio = BIO_new_mem_buf(key_pem.data(), static_cast<int>(key_pem.size()));
  EVP_PKEY* key =
      key_bio == nullptr ? nullptr : PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  BIO_free(key_bio);
  absl::Status status;
  if (key == nullptr) {
    status = absl::InvalidArgumentError(
        absl::StrCat(key_path, " holds no readable (unencrypted) private key"));
  } else if (X509_check_private_key(cert, key) != 1) {
    status = absl::InvalidArgumentError(
        absl::StrCat(key_path, " is not the private key of the ", "certificate in ", cert_path));
  }
  EVP_PKEY_free(key);
  X509_free(cert);
  return status;
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
  // gRPC would only log "Invalid private key" and fail to listen, blaming the address.
  if (absl::Status s = CheckKeyPair(*cert, *key, config.tls_cert_path, config.tls_key_path);
      !s.ok()) {
    return s;
  }
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
