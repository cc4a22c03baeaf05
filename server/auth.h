// TokenAuthProcessor: bearer-token authentication of the gRPC port. gRPC's server auth filter runs
// it on every call before any handler, so a call without `authorization: Bearer <token>` matching
// a line of the token file ends with UNAUTHENTICATED before any stream state exists. Health (and,
// by flag, reflection) may stay open. Owned by the server credentials (shared_ptr); Process runs
// on gRPC transport threads, concurrently; the token set is immutable after construction.
#ifndef SPEECHLLM_SERVER_AUTH_H_
#define SPEECHLLM_SERVER_AUTH_H_

#include <string>
#include <vector>

#include <grpcpp/security/auth_metadata_processor.h>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/metrics.h"

namespace speechllm::server {

// Reads a token file: one token per line; blank lines and lines starting with '#' are skipped,
// surrounding whitespace is trimmed. NOT_FOUND when unreadable; INVALID_ARGUMENT when it holds no
// token or a token shorter than kMinTokenChars or with inner whitespace (the line is named, the
// token never printed).
inline constexpr int kMinTokenChars = 16;
absl::StatusOr<std::vector<std::string>> ReadTokenFile(const std::string& path);

class TokenAuthProcessor : public grpc::AuthMetadataProcessor {
 public:
  struct Options {
    bool exempt_health = true;       // grpc.health.v1.Health (probes carry no token)
    bool exempt_reflection = false;  // grpc.reflection.v1alpha / v1
  };
  // `metrics` (not owned, may be null) counts refusals.
  TokenAuthProcessor(std::vector<std::string> tokens, Options options, Metrics* metrics);

  // The check is a few comparisons in memory: it runs inline on the transport thread.
  bool IsBlocking() const override { return false; }
  // OK for an exempt method or a known token (the authorization entry is consumed, so handlers
  // never see it); UNAUTHENTICATED ("TOKEN_MISSING: ..." / "TOKEN_INVALID: ...") otherwise.
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

 private:
  bool Exempt(absl::string_view path) const;
  // Compares against every token without stopping early, each comparison in constant time.
  bool Known(absl::string_view token) const;

  const std::vector<std::string> tokens_;
  const Options options_;
  Metrics* const metrics_;
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_AUTH_H_
