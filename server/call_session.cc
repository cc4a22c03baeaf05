#include "server/call_session.h"

#include <utility>

#include "server/grpc_status.h"

namespace speechllm::server {

absl::StatusOr<std::shared_ptr<streaming::Session>> OpenCallSession(
    ServiceContext& ctx, const streaming::SessionConfig& config, streaming::ResultSink* sink,
    CallMetrics& metrics) {
  auto session = streaming::Session::Create(config, {ctx.engine, ctx.log_mel, ctx.tokenizer}, sink);
  if (!session.ok()) {
    absl::Status status = session.status();
    if (status.code() == absl::StatusCode::kResourceExhausted) {
      metrics.Rejected(AdmissionReason::kKv);
      status = WithRetryDelay(WithReason(status, "KV_BUDGET"), ctx.config.retry_delay);
    }
    return status;
  }
  ctx.dispatcher->Register(*session);
  return session;
}

void CloseCallSession(ServiceContext& ctx, std::shared_ptr<streaming::Session> session) {
  if (session == nullptr) return;
  session->Detach();
  ctx.dispatcher->Unregister(session->sequence_id());
  session.reset();  // releases the engine sequence (unless a dispatcher delivery still holds it)
}

}  // namespace speechllm::server
