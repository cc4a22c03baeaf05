// The fixture of the server-limit tests (limits_test.cc, drain_deadline_test.cc): one real
// speechllm-server per test with the limit set low, /metrics read at the start so that a test can
// ask how much a series grew, and the ErrorInfo reason / RetryInfo of a status. Test-only; the
// test's thread.
#ifndef SPEECHLLM_TESTS_INTEGRATION_OPS_LIMITS_FIXTURE_H_
#define SPEECHLLM_TESTS_INTEGRATION_OPS_LIMITS_FIXTURE_H_

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/pcm_source.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/ops/ops_harness.h"

namespace speechllm::opstest {

// ErrorInfo.reason and whether RetryInfo is present, from grpc-status-details-bin.
struct Details {
  std::string reason;
  bool retry_info = false;
};
inline Details DetailsOf(const grpc::Status& status) {
  Details details;
  google::rpc::Status rpc_status;
  if (!rpc_status.ParseFromString(status.error_details())) return details;
  for (const auto& any : rpc_status.details()) {
    google::rpc::ErrorInfo info;
    if (any.UnpackTo(&info)) details.reason = info.reason();
    if (any.Is<google::rpc::RetryInfo>()) details.retry_info = true;
  }
  return details;
}

inline std::string Limit(const std::string& name) {
  return absl::StrCat("speechllm_limit_exceeded_total{limit=\"", name, "\"}");
}
inline std::string Calls(const std::string& method, const std::string& code) {
  return absl::StrCat("speechllm_requests_total{code=\"", code, "\",method=\"", method, "\"}");
}

class OpsLimits : public ::testing::Test {
 protected:
  void StartServer(const std::vector<std::string>& flags) {
    auto server = ServerProcess::Start(flags);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    stub_ = v1::StreamingSpeech::NewStub(channel_);
    auto before = Scrape(server_->metrics_port());
    ASSERT_TRUE(before.ok()) << before.status();
    before_ = *before;
  }
  // The increase of `series` since StartServer, printed.
  double Delta(const std::string& series) {
    auto after = Scrape(server_->metrics_port());
    EXPECT_TRUE(after.ok()) << after.status();
    if (!after.ok()) return -1;
    const double delta = Value(*after, series) - Value(before_, series);
    std::cout << "  " << series << ": " << Value(before_, series) << " -> " << Value(*after, series)
              << "\n";
    return delta;
  }
  // Starts a stream, sends it the clip and waits up to 2 s for its first answer, i.e. for the
  // server to admit it. nullptr (and a failure) when it was not admitted.
  std::unique_ptr<client::StreamingClient> OpenAdmittedStream(bool realtime) {
    auto stream =
        std::make_unique<client::StreamingClient>(stub_.get(), PcmStreamOptions(realtime));
    const absl::Status started = stream->Start();
    const absl::Status sent = started.ok() ? stream->SendAudio(ClipBytes()) : started;
    if (!sent.ok()) {
      ADD_FAILURE() << "could not open a stream: " << sent;
      return nullptr;
    }
    for (int i = 0; i < 200 && stream->responses().empty(); ++i) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    if (stream->responses().empty()) {
      ADD_FAILURE() << "the stream was not admitted within 2 s";
      return nullptr;
    }
    return stream;
  }
  static std::string ClipBytes() {
    auto audio = client::ReadWavAsPcm(ClipPath());
    return audio.ok() ? audio->data : std::string();
  }
  void TearDown() override {
    if (server_ != nullptr) {
      EXPECT_EQ(server_->Stop(), 0) << server_->Log();
    }
  }

  std::unique_ptr<ServerProcess> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::StreamingSpeech::Stub> stub_;
  MetricSamples before_;
};

}  // namespace speechllm::opstest

#endif  // SPEECHLLM_TESTS_INTEGRATION_OPS_LIMITS_FIXTURE_H_
