// MetricsHttpServer: serves GET /metrics (the Prometheus text format from Metrics::Scrape) on its
// own port from one thread that polls every connection, within limits that keep any client from
// growing its memory, holding its file descriptors or blocking scrapes. Owned by main.cc; Start and
// the destructor on the main thread. (prometheus-cpp's civetweb Exposer cannot start its threads
// next to libtorch: DEPENDENCIES.md 5.)
#ifndef SPEECHLLM_SERVER_METRICS_HTTP_H_
#define SPEECHLLM_SERVER_METRICS_HTTP_H_

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/metrics.h"

namespace speechllm::server {

class MetricsHttpServer {
 public:
  // The server holds at most kMaxConnections at once (the oldest still sending its head gives way
  // to a new one), reads at most kMaxHeadBytes of a request within kHeadDeadline, and closes every
  // connection after one reply.
  static constexpr int kMaxConnections = 128;
  static constexpr size_t kMaxHeadBytes = 8192;
  static constexpr absl::Duration kHeadDeadline = absl::Seconds(2);    // from accept
  static constexpr absl::Duration kReplyDeadline = absl::Seconds(10);  // from accept

  // Binds `listen_address` ("HOST:PORT", "[V6]:PORT"; port 0 picks a free one) on every address
  // HOST resolves to (ListenOn) and serves `metrics` (not owned, must outlive the server).
  // INVALID_ARGUMENT for a malformed address, UNAVAILABLE when the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const std::string& listen_address,
                                                                  Metrics* metrics);
  ~MetricsHttpServer();  // stops the loop, closes every socket
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }

 private:
  struct Connection;
  explicit MetricsHttpServer(Metrics* metrics) : metrics_(metrics) {}
  void Loop();
  // Takes every pending connection of `listen_fd` (Loop's thread), within kMaxConnections.
  void Accept(int listen_fd, std::vector<Connection>* connections, absl::Time* accept_paused_until);
  // Reads what `c`'s client has sent of its request head, and makes the reply once the head is
  // whole (or 431 past kMaxHeadBytes). False when the client closed or the socket failed.
  bool ReadHead(Connection* c);

  Metrics* const metrics_;
  std::vector<int> listen_fds_;  // one per address the host resolves to, one port
  int wake_read_fd_ = -1;        // the destructor writes to wake_write_fd_ to end Loop
  int wake_write_fd_ = -1;
  int port_ = 0;
  std::thread loop_;
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_METRICS_HTTP_H_
