// MetricsHttpServer: serves GET /metrics (the Prometheus text format from Metrics::Scrape) with
// cpp-httplib on its own port and its own small thread pool; it touches nothing but the metrics.
// (prometheus-cpp's civetweb Exposer cannot start its threads next to libtorch: DEPENDENCIES.md 5.)
// Owned by main.cc; Start and the destructor on the main thread, requests on the pool's threads.
#ifndef SPEECHLLM_SERVER_METRICS_HTTP_H_
#define SPEECHLLM_SERVER_METRICS_HTTP_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "server/metrics.h"

namespace httplib {
class Server;
}  // namespace httplib

namespace speechllm::server {

class MetricsHttpServer {
 public:
  // Binds `listen_address` ("HOST:PORT", "[V6]:PORT"; port 0 picks a free one) and serves
  // `metrics` (not owned, must outlive the server) on `threads` worker threads.
  // INVALID_ARGUMENT for a malformed address, UNAVAILABLE when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& listen_address,
                                                                  Metrics* metrics,
                                                                  int threads = 2);
  ~MetricsHttpServer();  // stops accepting, joins the listener thread
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }

 private:
  MetricsHttpServer() = default;

  std::unique_ptr<httplib::Server> http_;
  std::thread listener_;
  std::atomic<bool> listener_done_{false};  // listen_after_bind returned
  int port_ = 0;
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_METRICS_HTTP_H_
