// ToGrpcStatus's bounded messages (server/grpc_status.h, label unit): a message that echoes a long
// client value is cut at a UTF-8 boundary with the cut noted, in grpc-message and in the details,
// which keep their ErrorInfo reason; short messages pass unchanged.
#include "server/grpc_status.h"

#include <string>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace speechllm::server {
namespace {

TEST(BoundedErrorMessageTest, ShortMessagesPassUnchanged) {
  EXPECT_EQ(BoundedErrorMessage("unknown model \"x\""), "unknown model \"x\"");
  const std::string exact(kMaxErrorMessageBytes, 'a');
  EXPECT_EQ(BoundedErrorMessage(exact), exact);
}

TEST(BoundedErrorMessageTest, LongMessagesAreCutAtACharacterBoundary) {
  const std::string ascii = "unknown model \"" + std::string(20000, 'm') + "\"";
  const std::string cut = BoundedErrorMessage(ascii);
  EXPECT_EQ(cut.substr(0, kMaxErrorMessageBytes), ascii.substr(0, kMaxErrorMessageBytes));
  EXPECT_EQ(cut.substr(kMaxErrorMessageBytes),
            " [" + std::to_string(ascii.size() - kMaxErrorMessageBytes) + " bytes cut]");
  // Three-byte characters ("語"): the cut may not split one.
  std::string wide = "x";
  for (int i = 0; i < 1000; ++i) wide += "\xe8\xaa\x9e";
  const std::string wide_cut = BoundedErrorMessage(wide);
  const size_t kept = wide_cut.find(" [");
  ASSERT_NE(kept, std::string::npos);
  EXPECT_LE(kept, kMaxErrorMessageBytes);
  EXPECT_EQ((kept - 1) % 3, 0u) << "a character was split";
  EXPECT_EQ(wide_cut.substr(kept), " [" + std::to_string(wide.size() - kept) + " bytes cut]");
}

TEST(ToGrpcStatusTest, BoundsTheMessageEverywhereAndKeepsTheReason) {
  const absl::Status status =
      WithField(WithReason(absl::InvalidArgumentError("unknown model \"" + std::string(20000, 'm')),
                           "UNKNOWN_MODEL"),
                "config.model");
  const grpc::Status grpc_status = ToGrpcStatus(status);
  EXPECT_EQ(grpc_status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_LT(grpc_status.error_message().size(), kMaxErrorMessageBytes + 32);
  EXPECT_LT(grpc_status.error_details().size(), 4 * kMaxErrorMessageBytes);
  google::rpc::Status details;
  ASSERT_TRUE(details.ParseFromString(grpc_status.error_details()));
  EXPECT_EQ(details.message(), grpc_status.error_message());
  bool has_reason = false;
  for (const auto& any : details.details()) {
    google::rpc::ErrorInfo info;
    google::rpc::BadRequest bad_request;
    if (any.UnpackTo(&info)) has_reason = info.reason() == "UNKNOWN_MODEL";
    if (any.UnpackTo(&bad_request)) {
      EXPECT_EQ(bad_request.field_violations(0).description(), grpc_status.error_message());
    }
  }
  EXPECT_TRUE(has_reason);
}

}  // namespace
}  // namespace speechllm::server
