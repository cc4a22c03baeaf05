#include "client/output_format.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/message_differencer.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"

namespace speechllm::client {
namespace {

using speechllm::v1::StreamingRecognizeResponse;
using speechllm::v1::TranscriptUpdate;
using ::testing::HasSubstr;

TranscriptUpdate Update(uint32_t utterance, const std::string& delta, const std::string& tentative,
                        bool is_final) {
  TranscriptUpdate update;
  update.set_utterance_id(utterance);
  update.set_committed_delta(delta);
  update.set_tentative(tentative);
  update.set_is_final(is_final);
  return update;
}

TEST(OutputFormatTest, JsonLineIsOneLineOfCamelCaseJsonThatParsesBack) {
  StreamingRecognizeResponse response;
  response.set_response_seq(7);
  response.mutable_audio_received()->set_seconds(1);
  response.mutable_audio_received()->set_nanos(500000000);
  *response.mutable_transcript() = Update(2, "hello ", "", true);
  response.mutable_transcript()->add_token_ids(42);

  absl::StatusOr<std::string> json = ToJsonLine(response);
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_THAT(*json, HasSubstr("\"committedDelta\":\"hello \""));
  EXPECT_THAT(*json, HasSubstr("\"isFinal\":true"));
  EXPECT_THAT(*json, HasSubstr("\"audioReceived\":\"1.500s\""));
  EXPECT_EQ(json->find('\n'), std::string::npos);

  StreamingRecognizeResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(*json, &parsed).ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(parsed, response));
}

TEST(OutputFormatTest, PrinterWritesPrefixedLinesWhenNotATerminal) {
  TranscriptPrinter printer(/*terminal=*/false, /*print_token_ids=*/true);
  EXPECT_EQ(printer.Render(Update(0, "", "hel", false)), "partial: hel\n");
  EXPECT_EQ(printer.Render(Update(0, "hello ", "wor", false)), "partial: hello wor\n");
  TranscriptUpdate final_update = Update(0, "world", "", true);
  final_update.add_token_ids(1);
  final_update.add_token_ids(2);
  final_update.add_token_ids(3);
  EXPECT_EQ(printer.Render(final_update), "final: hello world\ntokens: 1 2 3\n");
  // The next utterance starts from empty committed text; its line does not show the separator
  // the server put before it.
  EXPECT_EQ(printer.Render(Update(1, " again", "", false)), "partial: again\n");
  EXPECT_EQ(printer.Finish(), "");
}

TEST(OutputFormatTest, PrinterRedrawsPartialsInPlaceOnATerminal) {
  TranscriptPrinter printer(/*terminal=*/true, /*print_token_ids=*/false);
  EXPECT_EQ(printer.Render(Update(0, "a ", "b", false)), "\r\033[Ka b");
  EXPECT_EQ(printer.Render(Update(0, "", "bc", false)), "\r\033[Ka bc");
  EXPECT_EQ(printer.Render(Update(0, "bcd", "", true)), "\r\033[Ka bcd\n");
  EXPECT_EQ(printer.Finish(), "");
  EXPECT_EQ(printer.Render(Update(1, "", "x", false)), "\r\033[Kx");
  EXPECT_EQ(printer.Finish(), "\n");
}

TEST(OutputFormatTest, StatusNamesAndDetails) {
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::OK), "OK");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::INVALID_ARGUMENT), "INVALID_ARGUMENT");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
  EXPECT_EQ(StatusCodeName(grpc::StatusCode::UNAUTHENTICATED), "UNAUTHENTICATED");

  google::rpc::Status details;
  details.set_code(3);
  details.set_message("sample rate 0");
  google::rpc::ErrorInfo info;
  info.set_reason("BAD_CONFIG");
  info.set_domain("speechllm.v1");
  details.add_details()->PackFrom(info);
  const grpc::Status status(grpc::StatusCode::INVALID_ARGUMENT, "sample rate 0",
                            details.SerializeAsString());
  const std::string text = DescribeStatus(status);
  EXPECT_THAT(text, HasSubstr("INVALID_ARGUMENT: sample rate 0"));
  EXPECT_THAT(text, HasSubstr("BAD_CONFIG"));
  EXPECT_EQ(DescribeStatus(grpc::Status(grpc::StatusCode::CANCELLED, "bye")), "CANCELLED: bye");
}

TEST(OutputFormatTest, ReportMeasuresFromSendTimesToArrivals) {
  const Clock::time_point t0 = Clock::now();
  const auto at = [t0](int ms) { return t0 + std::chrono::milliseconds(ms); };
  std::vector<SentChunk> chunks;
  for (int k = 0; k < 10; ++k) {
    chunks.push_back({3200, absl::Milliseconds(100 * (k + 1)), at(100 * (k + 1))});
  }
  std::vector<ResponseRecord> responses(4);
  responses[0].response.mutable_started();  // no text: never a partial
  responses[0].arrival_time = at(5);
  responses[1].response.mutable_transcript()->set_tentative("");  // empty partial: ignored
  responses[1].arrival_time = at(250);
  responses[1].chunks_sent = 2;
  responses[1].last_audio_sent_time = at(200);
  *responses[2].response.mutable_transcript() = Update(0, "", "hi", false);
  responses[2].arrival_time = at(430);
  responses[2].chunks_sent = 4;
  responses[2].last_audio_sent_time = at(400);
  *responses[3].response.mutable_transcript() = Update(0, "hi", "", true);
  responses[3].arrival_time = at(1150);
  responses[3].chunks_sent = 10;
  responses[3].last_audio_sent_time = at(1000);

  const StreamReport report = ComputeStreamReport(responses, chunks, t0, at(1200));
  ASSERT_TRUE(report.first_partial_latency.has_value());
  EXPECT_EQ(*report.first_partial_latency, absl::Milliseconds(330));
  EXPECT_THAT(report.finalization_latencies, ::testing::ElementsAre(absl::Milliseconds(150)));
  EXPECT_EQ(report.audio_sent, absl::Seconds(1));
  EXPECT_DOUBLE_EQ(report.real_time_factor, 1.2);
  // Opus from stdin: the chunks' offsets come from the bitrate; the PCM read gives the duration.
  const StreamReport exact =
      ComputeStreamReport(responses, chunks, t0, at(1200), absl::Milliseconds(1500));
  EXPECT_EQ(exact.audio_sent, absl::Milliseconds(1500));
  EXPECT_DOUBLE_EQ(exact.real_time_factor, 0.8);

  speechllm::v1::SessionSummary summary;
  summary.set_utterances(1);
  summary.mutable_finalization()->mutable_p50()->set_nanos(120000000);
  const std::string text = FormatStreamReport(report, &summary);
  EXPECT_THAT(text, HasSubstr("first partial after the first audio sent: 330.0 ms"));
  EXPECT_THAT(text, HasSubstr("last 150.0 ms (1 finals)"));
  EXPECT_THAT(text, HasSubstr("real-time factor: 1.200"));
  EXPECT_THAT(text, HasSubstr("server finalization latency: p50 120.0 ms"));
  EXPECT_THAT(FormatStreamReport(StreamReport(), nullptr),
              HasSubstr("first partial after the first audio sent: none"));

  // Without interim results only finals carry text: there is no first partial.
  const std::vector<ResponseRecord> finals_only = {responses[0], responses[3]};
  const StreamReport no_partials = ComputeStreamReport(finals_only, chunks, t0, at(1200));
  EXPECT_FALSE(no_partials.first_partial_latency.has_value());
  EXPECT_THAT(no_partials.finalization_latencies, ::testing::ElementsAre(absl::Milliseconds(150)));
}

}  // namespace
}  // namespace speechllm::client
