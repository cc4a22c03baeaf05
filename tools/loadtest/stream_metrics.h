// The load test's measurements (API.md section 5, "Concurrent streams at target latency"): from
// each stream's responses and sent chunks, the lag and end-to-end latency of every transcript
// update, the server's finalization processing and queue waits, and the call's status; then
// percentiles over all streams and the verdict against a target. Plain functions and value types;
// speechllm-loadtest's main thread calls them after the run.
#ifndef SPEECHLLM_TOOLS_LOADTEST_STREAM_METRICS_H_
#define SPEECHLLM_TOOLS_LOADTEST_STREAM_METRICS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "client/speech_client.h"

namespace speechllm::loadtest {

// What one stream measured.
struct StreamSamples {
  std::vector<double> lag_ms;                 // every transcript update
  std::vector<double> client_lag_ms;          // every transcript update, from audio_captured
  std::vector<double> partial_end_to_end_ms;  // non-final updates
  std::vector<double> final_end_to_end_ms;
  std::vector<double> final_processing_ms;  // ResultTiming.processing of finals, when sent
  // ResultTiming.queue_wait (the server's engine queue) of each update, when sent.
  std::vector<double> partial_queue_wait_ms, final_queue_wait_ms;
  int64_t finals = 0;
  std::map<std::string, int64_t> warnings;  // by Warning.Code name
  double compute_rtf = 0;                   // SessionSummary.compute_rtf (0 without a summary)
  grpc::StatusCode status = grpc::StatusCode::OK;
};

// The lag at every transcript update is audio_received - audio_processed (API.md 5's, the
// server's view); the client lag is audio_captured - audio_processed, which also counts audio
// held in the client while the server's reads were paused (it assumes no stream_offset, which
// the server adds to audio_processed; the load test sets none). The end-to-end latency of each
// update is its arrival - when the chunk that completed the audio it reflects was handed to gRPC.
StreamSamples MeasureStream(const std::vector<client::ResponseRecord>& responses,
                            const std::vector<client::SentChunk>& sent_chunks,
                            const grpc::Status& status);

// The lag targets hold for both lags.
struct LoadTarget {
  absl::Duration lag_p50 = absl::Seconds(1), lag_p99 = absl::Seconds(2);
  // Finalization processing p95; infinite = not part of the verdict.
  absl::Duration final_processing_p95 = absl::InfiniteDuration();
};

struct LoadReport {
  int64_t streams = 0, failed_streams = 0, updates = 0, finals = 0;
  std::map<std::string, int64_t> failures;  // by gRPC status code name
  std::map<std::string, int64_t> warnings;
  double lag_ms_p50 = 0, lag_ms_p99 = 0;
  double client_lag_ms_p50 = 0, client_lag_ms_p99 = 0;
  double partial_end_to_end_ms_p50 = 0, partial_end_to_end_ms_p95 = 0;
  double final_end_to_end_ms_p50 = 0, final_end_to_end_ms_p95 = 0;
  double final_processing_ms_p50 = 0, final_processing_ms_p95 = 0;
  double partial_queue_wait_ms_p95 = 0, final_queue_wait_ms_p95 = 0;
  double compute_rtf_max = 0;
  bool target_met = false;
  std::string verdict;  // "met", or what missed it
};

LoadReport Summarize(const std::vector<StreamSamples>& streams, const LoadTarget& target);

// One line of JSON with every field of `report`.
std::string ToJson(const LoadReport& report);

}  // namespace speechllm::loadtest

#endif  // SPEECHLLM_TOOLS_LOADTEST_STREAM_METRICS_H_
