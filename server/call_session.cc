#include "server/call_session.h"

#include <utility>

#include "server/grpc_status.h"

namespace speechllm::server {

absl::StatusOr<std::shared_ptr<streaming::Session>> OpenCallSession(
    ServiceContext& ctx, const streaming::SessionConfig& config, streaming::ResultSink* sink,
    CallMetrics& metrics) {
  auto session = streaming::Session::Create(
      config, {ctx.engine, ctx.log_mel, ctx.tokenizer, ctx.embedding_cache}, sink);
  if (!session.ok()) return KvBudgetRefusal(ctx, session.status(), metrics);
  ctx.dispatcher->Register(*session);
  return session;
}

absl::Status KvBudgetRefusal(const ServiceContext& ctx, absl::Status status, CallMetrics& metrics) {
  if (status.code() != absl::StatusCode::kResourceExhausted) return status;
  metrics.Rejected(AdmissionReason::kKv);
  return WithRetryDelay(WithReason(status, "KV_BUDGET"), ctx.config.retry_delay);
}

void CloseCallSession(ServiceContext& ctx, std::shared_ptr<streaming::Session> session) {
  if (session == nullptr) return;
  session->Detach();
  ctx.dispatcher->Unregister(session->sequence_id());
  session.reset();  // releases the engine sequence (unless a dispatcher delivery still holds it)
}

}  // namespace speechllm::server
