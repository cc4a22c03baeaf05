// StreamingClientTest: the fixture of the StreamingClient tests, an in-process gRPC server running
// the scripted StreamingSpeech service of scripted_server.h, with the requests it logged and PCM
// client options, and Seconds() of a clock duration. Test threads only (the server's reactions run
// on gRPC's threads).
#ifndef SPEECHLLM_TESTS_UNIT_CLIENT_STREAMING_CLIENT_FIXTURE_H_
#define SPEECHLLM_TESTS_UNIT_CLIENT_STREAMING_CLIENT_FIXTURE_H_

#include <chrono>
#include <memory>
#include <vector>

#include "client/speech_client.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/unit/client/scripted_server.h"

namespace speechllm::client {

class StreamingClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = speechllm::v1::StreamingSpeech::NewStub(
        server_->InProcessChannel(grpc::ChannelArguments()));
  }
  void TearDown() override { server_->Shutdown(); }

  static StreamingClientOptions Options(int rate_hz, int channels, bool realtime,
                                        int chunk_ms = 100) {
    StreamingClientOptions options;
    options.config.mutable_audio()->set_encoding(speechllm::v1::AudioFormat::PCM_S16LE);
    options.config.mutable_audio()->set_sample_rate_hz(rate_hz);
    options.config.mutable_audio()->set_channels(channels);
    options.realtime = realtime;
    options.chunk_ms = chunk_ms;
    return options;
  }

  std::vector<speechllm::v1::StreamingRecognizeRequest> Requests() {
    absl::MutexLock lock(&service_.log.mu);
    return service_.log.requests;
  }
  std::vector<size_t> AudioSizes() {
    std::vector<size_t> sizes;
    for (const auto& request : Requests()) {
      if (request.has_audio()) sizes.push_back(request.audio().data().size());
    }
    return sizes;
  }
  bool HalfClosed() {
    absl::MutexLock lock(&service_.log.mu);
    return service_.log.half_closed;
  }

  speechllm::testing::ScriptedService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<speechllm::v1::StreamingSpeech::Stub> stub_;
};

inline double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace speechllm::client

#endif  // SPEECHLLM_TESTS_UNIT_CLIENT_STREAMING_CLIENT_FIXTURE_H_
