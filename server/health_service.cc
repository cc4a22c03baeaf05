#include "server/health_service.h"

#include "absl/strings/str_cat.h"
#include "proto/grpc_handoff.h"
#include "server/grpc_status.h"

namespace speechllm::server {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// One Watch call: writes the current status, then every change, until cancelled or shut down.
class HealthService::Watcher : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  Watcher(HealthService* service, std::string name) : service_(service), name_(std::move(name)) {}

  const std::string& name() const { return name_; }

  // mu_ of the service is held (asserted: the analysis cannot tell that service_ is the caller).
  void Update(HealthCheckResponse::ServingStatus status) {
    service_->mu_.AssertHeld();
    absl::MutexLock lock(&mu_);
    if (finished_ || (has_last_ && status == last_)) return;
    last_ = status;
    has_last_ = true;
    pending_ = true;
    MaybeWriteLocked();
  }
  void End(const grpc::Status& status = grpc::Status::OK) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    finished_ = true;
    GrpcHandoffRelease(this);
    Finish(status);
  }
  void OnWriteDone(bool ok) override {
    const GrpcReaction reaction(this);
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) {
      if (!finished_) {
        finished_ = true;
        GrpcHandoffRelease(this);
        Finish(grpc::Status::CANCELLED);
      }
      return;
    }
    MaybeWriteLocked();
  }
  void OnCancel() override {
    const GrpcReaction reaction(this);
    End();
  }
  void OnDone() override {
    GrpcHandoffAcquire(this);
    {
      absl::MutexLock lock(&service_->mu_);
      service_->watchers_.erase(this);
    }
    delete this;
  }

 private:
  void MaybeWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || !pending_ || finished_) return;
    pending_ = false;
    writing_ = true;
    response_.set_status(last_);
    GrpcHandoffRelease(this);
    StartWrite(&response_);
  }

  HealthService* service_;
  std::string name_;
  absl::Mutex mu_;
  HealthCheckResponse response_ ABSL_GUARDED_BY(mu_);
  HealthCheckResponse::ServingStatus last_ ABSL_GUARDED_BY(mu_) = HealthCheckResponse::UNKNOWN;
  bool has_last_ ABSL_GUARDED_BY(mu_) = false;
  bool pending_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

HealthCheckResponse::ServingStatus HealthService::StatusOf(const std::string& service) {
  if (!service.empty() && service != kServiceName) return HealthCheckResponse::SERVICE_UNKNOWN;
  return serving_ ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING;
}

HealthService::~HealthService() {
  absl::MutexLock lock(&mu_);
  auto empty = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return watchers_.empty(); };
  mu_.AwaitWithTimeout(absl::Condition(&empty), absl::Seconds(5));
}

void HealthService::SetServing(bool serving) {
  absl::MutexLock lock(&mu_);
  serving_ = serving;
  // Each watcher's own service: one watching an unknown name stays SERVICE_UNKNOWN.
  for (Watcher* watcher : watchers_) watcher->Update(StatusOf(watcher->name()));
}

void HealthService::Shutdown() {
  // Under mu_: a watcher removes itself (OnDone, on a gRPC thread after Finish) under mu_ too, so
  // every pointer here is alive.
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  for (Watcher* watcher : watchers_) watcher->End();
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* context,
                                               const HealthCheckRequest* request,
                                               HealthCheckResponse* response) {
  auto* reactor = context->DefaultReactor();
  absl::MutexLock lock(&mu_);
  const auto status = StatusOf(request->service());
  if (status == HealthCheckResponse::SERVICE_UNKNOWN) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 BoundedErrorMessage("unknown service " + request->service())));
  } else {
    response->set_status(status);
    reactor->Finish(grpc::Status::OK);
  }
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext* context, const HealthCheckRequest* request) {
  // Watch needs no token where health is exempt, so an unauthenticated client must not pin
  // memory with it: the name is bounded, and so are the open watches (Check always answers).
  const bool long_name = request->service().size() > kMaxServiceNameBytes;
  auto* watcher = new Watcher(this, long_name ? std::string() : request->service());
  absl::MutexLock lock(&mu_);
  if (shutdown_) {
    watcher->End();
    return watcher;
  }
  if (long_name) {
    watcher->End(
        grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                     absl::StrCat("service names are at most ", kMaxServiceNameBytes, " bytes")));
    return watcher;
  }
  if (static_cast<int64_t>(watchers_.size()) >= kMaxWatchers) {
    watcher->End(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                              absl::StrCat(kMaxWatchers, " health watches are open: use Check")));
    return watcher;
  }
  watchers_.insert(watcher);
  watcher->Update(StatusOf(request->service()));
  return watcher;
}

}  // namespace speechllm::server
