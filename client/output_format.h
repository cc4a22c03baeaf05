// What the client prints: responses as one-line protobuf JSON, transcripts as partial/final lines
// (in place on a terminal), the end-of-stream latency report and gRPC status names. Owned by the
// CLI and the tests; TranscriptPrinter is used from one thread at a time, the rest from any thread.
#ifndef SPEECHLLM_CLIENT_OUTPUT_FORMAT_H_
#define SPEECHLLM_CLIENT_OUTPUT_FORMAT_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/speech_client.h"
#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"
#include "speechllm/v1/speechllm.pb.h"

namespace speechllm::client {

// One line of protobuf JSON (lowerCamelCase names, enums by name, as `buf curl` prints them).
absl::StatusOr<std::string> ToJsonLine(const google::protobuf::Message& message);

// "OK", "INVALID_ARGUMENT", ...
std::string StatusCodeName(grpc::StatusCode code);
// "CODE: message", plus the google.rpc.Status details as JSON when the server sent any.
std::string DescribeStatus(const grpc::Status& status);

// Turns TranscriptUpdates into text to print. On a terminal a partial redraws the current line
// ("\r", erase line) and a final ends it; otherwise every update is its own line, prefixed
// "partial: " or "final: ". Shown text = the utterance's committed text + the tentative tail.
class TranscriptPrinter {
 public:
  TranscriptPrinter(bool terminal, bool print_token_ids);
  // The text to print for `update` (may be empty, e.g. a partial whose text did not change).
  std::string Render(const speechllm::v1::TranscriptUpdate& update);
  // Ends a partial left on the terminal line ("\n" or "").
  std::string Finish();

 private:
  bool terminal_;
  bool print_token_ids_;
  bool line_open_ = false;
  std::map<uint32_t, std::string> committed_;  // by utterance_id, until its final
};

// Client-side timing of one stream.
struct StreamReport {
  // Send time of the first AudioChunk -> arrival of the first partial (not final) with text.
  std::optional<absl::Duration> first_partial_latency;
  // Per final: send time of the last AudioChunk handed to gRPC before it (the end of the audio
  // for the last final) -> its arrival.
  std::vector<absl::Duration> finalization_latencies;
  absl::Duration audio_sent;
  absl::Duration wall_time;     // Start() -> end of the call
  double real_time_factor = 0;  // wall_time / audio_sent; 0 without audio
};

// `audio_duration`, when known, replaces the last chunk's audio offset as audio_sent: the offsets
// of Opus encoded from stdin are estimates from the bitrate.
StreamReport ComputeStreamReport(const std::vector<ResponseRecord>& responses,
                                 const std::vector<SentChunk>& sent_chunks,
                                 Clock::time_point start_time, Clock::time_point end_time,
                                 std::optional<absl::Duration> audio_duration = std::nullopt);

// Human-readable report, plus the server's SessionSummary when `summary` is not null.
std::string FormatStreamReport(const StreamReport& report,
                               const speechllm::v1::SessionSummary* summary);

}  // namespace speechllm::client

#endif  // SPEECHLLM_CLIENT_OUTPUT_FORMAT_H_
