#include "server/tls.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>
#include <fstream>
#include <memory>
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

namespace {

// Frees an OpenSSL object with its own free function.
template <auto kFree>
struct OpenSslFree {
  template <typename T>
  void operator()(T* object) const {
    kFree(object);
  }
};

// A pass phrase callback that has none: an encrypted key fails to read. Without it OpenSSL asks
// on the terminal, and a server with one (docker run -it) waits there forever.
int NoPassphrase(char*, int, int, void*) { return 0; }

// The first PEM object `read` finds in `pem` (null when none parses).
template <typename T, auto kRead, auto kFree>
std::unique_ptr<T, OpenSslFree<kFree>> ReadPem(const std::string& pem) {
  const std::unique_ptr<BIO, OpenSslFree<BIO_free>> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return std::unique_ptr<T, OpenSslFree<kFree>>(
      bio == nullptr ? nullptr : kRead(bio.get(), nullptr, &NoPassphrase, nullptr));
}

// INVALID_ARGUMENT naming `path` unless `pem` holds at least one readable certificate (a CA file
// holding a key, or a mangled one).
absl::Status CheckCertificateBundle(const std::string& pem, const std::string& path) {
  const std::unique_ptr<BIO, OpenSslFree<BIO_free>> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (bio == nullptr) return absl::ResourceExhaustedError("BIO_new_mem_buf failed");
  STACK_OF(X509_INFO)* infos = PEM_X509_INFO_read_bio(bio.get(), nullptr, &NoPassphrase, nullptr);
  int certificates = 0;
  if (infos != nullptr) {
    for (int i = 0; i < sk_X509_INFO_num(infos); ++i) {
      if (sk_X509_INFO_value(infos, i)->x509 != nullptr) ++certificates;
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
  }
  if (certificates == 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, " holds no readable certificate"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckKeyPair(const std::string& cert_pem, const std::string& key_pem,
                          const std::string& cert_path, const std::string& key_path) {
  const auto cert = ReadPem<X509, PEM_read_bio_X509, X509_free>(cert_pem);
  if (cert == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(cert_path, " holds no readable certificate"));
  }
  const auto key = ReadPem<EVP_PKEY, PEM_read_bio_PrivateKey, EVP_PKEY_free>(key_pem);
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(key_path, " holds no readable (unencrypted) private key"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(key_path, " is not the private key of the certificate in ", cert_path));
  }
  return absl::OkStatus();
}

namespace {

// The certificate's notAfter in Unix seconds; -1 when it cannot be read.
double NotAfterSeconds(const std::string& cert_pem) {
  const auto cert = ReadPem<X509, PEM_read_bio_X509, X509_free>(cert_pem);
  std::tm not_after{};
  if (cert == nullptr || ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &not_after) != 1) {
    return -1;
  }
  return static_cast<double>(timegm(&not_after));
}

}  // namespace

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
  if (const double not_after = NotAfterSeconds(*cert); metrics != nullptr && not_after > 0) {
    metrics->SetTlsCertificateExpiry(not_after);
  }
  pair.cert_chain = *std::move(cert);
  pair.private_key = *std::move(key);
  options.pem_key_cert_pairs.push_back(std::move(pair));
  if (!config.tls_client_ca_path.empty()) {
    auto ca = ReadPemFile(config.tls_client_ca_path);
    if (!ca.ok()) return ca.status();
    // gRPC would only log "Could not load any root certificate" and fail to listen.
    if (absl::Status s = CheckCertificateBundle(*ca, config.tls_client_ca_path); !s.ok()) return s;
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
