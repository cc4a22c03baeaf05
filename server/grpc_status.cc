#include "server/grpc_status.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"

namespace speechllm::server {
namespace {

constexpr char kReasonUrl[] = "type.googleapis.com/speechllm.v1.ErrorReason";
constexpr char kFieldUrl[] = "type.googleapis.com/speechllm.v1.ErrorField";
constexpr char kRetryUrl[] = "type.googleapis.com/speechllm.v1.RetryDelayMs";
constexpr char kDomain[] = "speechllm.v1";

}  // namespace

absl::Status WithReason(absl::Status status, const std::string& reason) {
  status.SetPayload(kReasonUrl, absl::Cord(reason));
  return status;
}

absl::Status WithField(absl::Status status, const std::string& field) {
  status.SetPayload(kFieldUrl, absl::Cord(field));
  return status;
}

absl::Status WithRetryDelay(absl::Status status, absl::Duration delay) {
  status.SetPayload(kRetryUrl, absl::Cord(std::to_string(absl::ToInt64Milliseconds(delay))));
  return status;
}

std::string ReasonOf(const absl::Status& status) {
  if (auto reason = status.GetPayload(kReasonUrl); reason.has_value()) return std::string(*reason);
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      return "BAD_CONFIG";
    case absl::StatusCode::kResourceExhausted:
      return "KV_BUDGET";
    case absl::StatusCode::kOutOfRange:
      return "MAX_DURATION";
    case absl::StatusCode::kUnavailable:
      return "DRAINING";
    case absl::StatusCode::kUnauthenticated:
      return "TOKEN_INVALID";
    case absl::StatusCode::kFailedPrecondition:
      return "CONFIG_REPEATED";
    default:
      return "ENGINE_ERROR";
  }
}

std::optional<int64_t> RetryDelayMs(const absl::Status& status) {
  auto retry = status.GetPayload(kRetryUrl);
  if (!retry.has_value()) return std::nullopt;
  int64_t ms = 0;
  if (!absl::SimpleAtoi(std::string(*retry), &ms)) return std::nullopt;
  return ms;
}

std::string BoundedErrorMessage(absl::string_view message) {
  if (message.size() <= kMaxErrorMessageBytes) return std::string(message);
  size_t keep = kMaxErrorMessageBytes;
  // Back off over UTF-8 continuation bytes (10xxxxxx) so that no character is split.
  while (keep > 0 && (static_cast<unsigned char>(message[keep]) & 0xC0) == 0x80) --keep;
  return absl::StrCat(message.substr(0, keep), " [", message.size() - keep, " bytes cut]");
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(static_cast<int>(status.code()));
  const std::string message = BoundedErrorMessage(status.message());
  google::rpc::Status details;
  details.set_code(static_cast<int>(status.code()));
  details.set_message(message);
  google::rpc::ErrorInfo info;
  info.set_reason(ReasonOf(status));
  info.set_domain(kDomain);
  details.add_details()->PackFrom(info);
  if (auto field = status.GetPayload(kFieldUrl); field.has_value()) {
    google::rpc::BadRequest bad_request;
    auto* violation = bad_request.add_field_violations();
    violation->set_field(std::string(*field));
    violation->set_description(message);
    details.add_details()->PackFrom(bad_request);
  }
  if (auto retry = status.GetPayload(kRetryUrl); retry.has_value()) {
    const int64_t ms = std::stoll(std::string(*retry));
    google::rpc::RetryInfo retry_info;
    retry_info.mutable_retry_delay()->set_seconds(ms / 1000);
    retry_info.mutable_retry_delay()->set_nanos(static_cast<int32_t>((ms % 1000) * 1000000));
    details.add_details()->PackFrom(retry_info);
  }
  return grpc::Status(code, message, details.SerializeAsString());
}

}  // namespace speechllm::server
