// The single conversion from absl::Status to grpc::Status (API.md 3): the code maps one to one
// (both use google.rpc codes) and grpc-status-details-bin carries a google.rpc.Status with
// ErrorInfo{reason, domain "speechllm.v1"}, plus BadRequest (field path) or RetryInfo where the
// absl::Status carries them as payloads (WithReason / WithField / WithRetryDelay). Pure functions;
// any thread.
#ifndef SPEECHLLM_SERVER_GRPC_STATUS_H_
#define SPEECHLLM_SERVER_GRPC_STATUS_H_

#include <cstdint>
#include <optional>
#include <string>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace speechllm::server {

// Attach the ErrorInfo reason (e.g. "BAD_CONFIG"), a BadRequest field path (e.g.
// "config.audio.sample_rate_hz") or a retry delay to a status; each returns the status for
// chaining.
absl::Status WithReason(absl::Status status, const std::string& reason);
absl::Status WithField(absl::Status status, const std::string& field);
absl::Status WithRetryDelay(absl::Status status, absl::Duration delay);

// The reason attached to `status`, or a default for its code ("ENGINE_ERROR" for INTERNAL...).
std::string ReasonOf(const absl::Status& status);

// The retry delay attached with WithRetryDelay, in milliseconds (for the grpc-retry-pushback-ms
// trailer of gRFC A6, next to RetryInfo).
std::optional<int64_t> RetryDelayMs(const absl::Status& status);

// At most this many bytes of an error message go to the client (then " [N bytes cut]"). The
// message travels three times in the trailers (grpc-message, and the details' message and
// BadRequest description in base64); messages that echo a client's 20 KB model name or prompt
// would otherwise pass gRPC's 8 KB default metadata limit, and the client would see
// "RESOURCE_EXHAUSTED: received initial metadata size exceeds limit" instead of the error.
inline constexpr size_t kMaxErrorMessageBytes = 512;
// `message` cut to kMaxErrorMessageBytes at a UTF-8 character boundary, with the cut noted.
std::string BoundedErrorMessage(absl::string_view message);

// The gRPC status for `status`, its message bounded by BoundedErrorMessage.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_GRPC_STATUS_H_
