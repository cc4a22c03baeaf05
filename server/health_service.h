// HealthService: grpc.health.v1.Health (Check and Watch) compiled from Debian's grpc-proto, so that
// server reflection describes it (gRPC 1.51's built-in service is not). Answers for "" and
// "speechllm.v1.StreamingSpeech": SERVING after the model is loaded and warmed up, NOT_SERVING
// while draining. Thread safety: SetServing from any thread; RPCs on gRPC threads.
#ifndef SPEECHLLM_SERVER_HEALTH_SERVICE_H_
#define SPEECHLLM_SERVER_HEALTH_SERVICE_H_

#include <cstddef>
#include <cstdint>
#include <set>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace speechllm::server {

class HealthService : public grpc::health::v1::Health::CallbackService {
 public:
  static constexpr char kServiceName[] = "speechllm.v1.StreamingSpeech";
  // Watch streams open at once (more: RESOURCE_EXHAUSTED) and the longest service name a Watch
  // may name (INVALID_ARGUMENT beyond): Watch can need no token (--auth_exempt_health).
  static constexpr int64_t kMaxWatchers = 256;
  static constexpr size_t kMaxServiceNameBytes = 256;

  // After the gRPC server has shut down: waits (at most 5 s) until every Watch stream's OnDone has
  // removed it, under the lock, so no watcher outlives the service.
  ~HealthService();

  void SetServing(bool serving) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends every Watch stream (before the server shuts down).
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request) override;

 private:
  class Watcher;
  friend class Watcher;
  grpc::health::v1::HealthCheckResponse::ServingStatus StatusOf(const std::string& service)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::set<Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_HEALTH_SERVICE_H_
