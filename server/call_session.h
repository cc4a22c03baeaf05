// Opening and closing the streaming::Session behind one call, the same for StreamingRecognize
// (StreamReactor) and Recognize (RecognizeCall): admission through the engine's KV budget, and
// registration with the output dispatcher. Called on the call's gRPC reactor threads.
#ifndef SPEECHLLM_SERVER_CALL_SESSION_H_
#define SPEECHLLM_SERVER_CALL_SESSION_H_

#include <memory>

#include "absl/status/statusor.h"
#include "server/call_metrics.h"
#include "server/service_context.h"
#include "streaming/session.h"

namespace speechllm::server {

// Creates the session over ctx's engine and registers it with the dispatcher. A refusal for lack of
// KV memory is counted and becomes RESOURCE_EXHAUSTED with reason KV_BUDGET and a retry delay.
absl::StatusOr<std::shared_ptr<streaming::Session>> OpenCallSession(
    ServiceContext& ctx, const streaming::SessionConfig& config, streaming::ResultSink* sink,
    CallMetrics& metrics);

// A refusal for lack of KV memory (RESOURCE_EXHAUSTED from the engine, at admission or when a
// reservation grows), counted, with reason KV_BUDGET and a retry delay; other statuses unchanged.
absl::Status KvBudgetRefusal(const ServiceContext& ctx, absl::Status status, CallMetrics& metrics);

// Detaches the session from its call and unregisters it; dropping the last reference releases the
// engine sequence. Null is fine (a call that never opened one).
void CloseCallSession(ServiceContext& ctx, std::shared_ptr<streaming::Session> session);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_CALL_SESSION_H_
