#include "server/metrics_http.h"

#include <chrono>

#include <httplib.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace speechllm::server {
namespace {

constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

// Splits "host:port" or "[v6]:port".
absl::Status SplitHostPort(const std::string& address, std::string* host, int* port) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", address, "\" is not HOST:PORT"));
  }
  *host = address.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  if (!absl::SimpleAtoi(address.substr(colon + 1), port) || *port < 0 || *port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address \"", address, "\" has no valid port"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen_address, Metrics* metrics, int threads) {
  std::string host;
  int port = 0;
  if (absl::Status status = SplitHostPort(listen_address, &host, &port); !status.ok()) {
    return status;
  }
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer());
  server->http_ = std::make_unique<httplib::Server>();
  httplib::Server& http = *server->http_;
  const size_t pool_threads = static_cast<size_t>(threads < 1 ? 1 : threads);
  http.new_task_queue = [pool_threads] { return new httplib::ThreadPool(pool_threads); };
  http.set_read_timeout(5, 0);
  http.set_write_timeout(5, 0);
  http.set_payload_max_length(4096);  // scrapes carry no body
  http.Get("/metrics", [metrics](const httplib::Request&, httplib::Response& response) {
    response.set_content(metrics->Scrape(), kContentType);
  });
  http.Get("/", [](const httplib::Request&, httplib::Response& response) {
    response.set_content("speechllm metrics: GET /metrics\n", "text/plain");
  });
  if (port == 0) {
    port = http.bind_to_any_port(host);
    if (port <= 0) port = -1;
  } else if (!http.bind_to_port(host, port)) {
    port = -1;
  }
  if (port < 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen for metrics on ", listen_address));
  }
  server->port_ = port;
  MetricsHttpServer* self = server.get();
  server->listener_ = std::thread([self, &http] {
    http.listen_after_bind();
    self->listener_done_ = true;
  });
  return server;
}

MetricsHttpServer::~MetricsHttpServer() {
  // httplib's stop() does nothing until the listener thread is inside its accept loop, so a server
  // destroyed right after Start (a start-up error) would otherwise wait in join() forever.
  while (listener_.joinable() && !listener_done_) {
    http_->stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (listener_.joinable()) listener_.join();
}

}  // namespace speechllm::server
