#include "server/auth.h"

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace speechllm::server {
namespace {

constexpr absl::string_view kHealthPrefix = "/grpc.health.v1.Health/";
constexpr absl::string_view kReflectionPrefixes[] = {"/grpc.reflection.v1alpha.ServerReflection/",
                                                     "/grpc.reflection.v1.ServerReflection/"};

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char difference = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    difference |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
  }
  return difference == 0;
}

absl::string_view ToView(const grpc::string_ref& ref) {
  return absl::string_view(ref.data(), ref.size());
}

}  // namespace

absl::StatusOr<std::vector<std::string>> ReadTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the token file ", path));
  std::vector<std::string> tokens;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const absl::string_view token = absl::StripAsciiWhitespace(line);
    if (token.empty() || token.front() == '#') continue;
    if (static_cast<int>(token.size()) < kMinTokenChars) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, " line ", number, ": a token needs at least ", kMinTokenChars, " characters"));
    }
    for (char c : token) {
      if (absl::ascii_isspace(static_cast<unsigned char>(c)) ||
          !absl::ascii_isprint(static_cast<unsigned char>(c))) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, " line ", number, ": a token must be printable ASCII without spaces"));
      }
    }
    tokens.emplace_back(token);
  }
  if (tokens.empty()) return absl::InvalidArgumentError(absl::StrCat(path, " holds no token"));
  return tokens;
}

TokenAuthProcessor::TokenAuthProcessor(std::vector<std::string> tokens, Options options,
                                       Metrics* metrics)
    : tokens_(std::move(tokens)), options_(options), metrics_(metrics) {}

bool TokenAuthProcessor::Exempt(absl::string_view path) const {
  if (options_.exempt_health && absl::StartsWith(path, kHealthPrefix)) return true;
  if (options_.exempt_reflection) {
    for (absl::string_view prefix : kReflectionPrefixes) {
      if (absl::StartsWith(path, prefix)) return true;
    }
  }
  return false;
}

bool TokenAuthProcessor::Known(absl::string_view token) const {
  bool known = false;
  for (const std::string& candidate : tokens_) known |= ConstantTimeEquals(token, candidate);
  return known;
}

grpc::Status TokenAuthProcessor::Process(const InputMetadata& auth_metadata,
                                         grpc::AuthContext* context,
                                         OutputMetadata* consumed_auth_metadata,
                                         OutputMetadata* response_metadata) {
  if (auto path = auth_metadata.find(":path");
      path != auth_metadata.end() && Exempt(ToView(path->second))) {
    return grpc::Status::OK;
  }
  auto header = auth_metadata.find("authorization");
  if (header == auth_metadata.end()) {
    if (metrics_ != nullptr) metrics_->AuthFailed(AuthFailure::kTokenMissing);
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "TOKEN_MISSING: send metadata \"authorization: Bearer <token>\"");
  }
  const absl::string_view value = ToView(header->second);
  constexpr absl::string_view kScheme = "bearer ";
  const bool bearer = value.size() > kScheme.size() &&
                      absl::EqualsIgnoreCase(value.substr(0, kScheme.size()), kScheme);
  if (!bearer || !Known(absl::StripAsciiWhitespace(value.substr(kScheme.size())))) {
    if (metrics_ != nullptr) metrics_->AuthFailed(AuthFailure::kTokenInvalid);
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "TOKEN_INVALID: the bearer token is not accepted by this server");
  }
  consumed_auth_metadata->emplace("authorization", std::string(value));
  return grpc::Status::OK;
}

}  // namespace speechllm::server
