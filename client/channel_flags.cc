#include "client/channel_flags.h"

#include <fstream>

#include "absl/flags/flag.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

ABSL_FLAG(std::string, token, "",
          "bearer token sent as authorization metadata (visible in ps: prefer --token_file)");
ABSL_FLAG(std::string, token_file, "",
          "file holding the bearer token: its first line that is not blank or a # comment");
ABSL_FLAG(bool, tls, false, "connect over TLS (implied by the other --tls flags)");
ABSL_FLAG(std::string, tls_ca, "", "PEM CA bundle for the server certificate (default: system)");
ABSL_FLAG(std::string, tls_cert, "", "PEM client certificate, for mutual TLS (with --tls-key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert");
ABSL_FLAG(std::string, tls_server_name, "", "name to verify in the server certificate");

namespace speechllm::client {

ChannelSecurity ChannelSecurityFromFlags() {
  ChannelSecurity security;
  security.tls = absl::GetFlag(FLAGS_tls);
  security.tls_ca_path = absl::GetFlag(FLAGS_tls_ca);
  security.tls_cert_path = absl::GetFlag(FLAGS_tls_cert);
  security.tls_key_path = absl::GetFlag(FLAGS_tls_key);
  security.tls_server_name = absl::GetFlag(FLAGS_tls_server_name);
  return security;
}

namespace {

// The token of --token or --token_file ("" for none).
absl::StatusOr<std::string> TokenFromFlags() {
  const std::string path = absl::GetFlag(FLAGS_token_file);
  if (path.empty()) return absl::GetFlag(FLAGS_token);
  if (!absl::GetFlag(FLAGS_token).empty()) {
    return absl::InvalidArgumentError("--token and --token_file: give one of them");
  }
  std::ifstream file(path);
  if (!file) {
    return absl::InvalidArgumentError(absl::StrCat("--token_file ", path, ": cannot be read"));
  }
  // The server's token file format: blank lines and lines starting with '#' are skipped.
  for (std::string line; std::getline(file, line);) {
    const absl::string_view token = absl::StripAsciiWhitespace(line);
    if (!token.empty() && token.front() != '#') return std::string(token);
  }
  return absl::InvalidArgumentError(absl::StrCat("--token_file ", path, ": holds no token"));
}

}  // namespace

absl::Status CheckChannelFlags() {
  absl::StatusOr<std::string> token = TokenFromFlags();
  if (!token.ok()) return token.status();
  if (!token->empty() && !ChannelSecurityFromFlags().UsesTls()) {
    return absl::InvalidArgumentError(
        "--token needs TLS (--tls or --tls-ca): a bearer token must not travel in plaintext");
  }
  return absl::OkStatus();
}

std::optional<std::pair<std::string, std::string>> AuthorizationFromFlags() {
  const absl::StatusOr<std::string> token = TokenFromFlags();
  if (!token.ok() || token->empty()) return std::nullopt;
  return std::pair<std::string, std::string>("authorization", absl::StrCat("Bearer ", *token));
}

}  // namespace speechllm::client
