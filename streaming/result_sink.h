// ResultSink: where a Session delivers its events; the server's stream reactor implements it (tests
// implement it with a recorder). Called from the session's input thread (gRPC) and from the output
// dispatcher thread, so implementations must be thread-safe and must never block.
#ifndef SPEECHLLM_STREAMING_RESULT_SINK_H_
#define SPEECHLLM_STREAMING_RESULT_SINK_H_

#include "absl/status/status.h"
#include "streaming/session_event.h"

namespace speechllm::streaming {

class ResultSink {
 public:
  virtual ~ResultSink() = default;
  // One event, in session order. A newer partial of the same utterance may replace an unsent one.
  virtual void Send(SessionEvent event) = 0;
  // The session's backlog fell below its limit: reading may resume.
  virtual void OnCapacity() = 0;
  // The session is over: every event was sent before this call; `status` ends the stream.
  virtual void Finish(const absl::Status& status) = 0;
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_RESULT_SINK_H_
