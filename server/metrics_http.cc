#include "server/metrics_http.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/host_port.h"
#include "server/http_exchange.h"
#include "server/listen_sockets.h"
#include "server/monotonic_clock.h"

namespace speechllm::server {

struct MetricsHttpServer::Connection {
  int fd = -1;
  absl::Time accepted;
  std::string received;  // the request head so far (at most kMaxHeadBytes)
  std::string reply;     // set once the head is complete, too large or too slow
  size_t sent = 0;
  bool replying() const { return !reply.empty(); }
};

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const std::string& listen_address, Metrics* metrics) {
  absl::StatusOr<HostPort> address = ParseHostPort(listen_address);
  if (!address.ok() || address->host.empty()) {  // ":9464", "[]:9464": no host to bind
    return absl::InvalidArgumentError(absl::StrCat(
        "metrics address ", address.ok() ? absl::StrCat("\"", listen_address, "\" is not HOST:PORT")
                                         : std::string(address.status().message())));
  }
  const std::string& host = address->host;
  const int port = address->port;
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer(metrics));
  absl::StatusOr<std::vector<int>> fds = ListenOnHost(host, port);
  if (!fds.ok()) {
    return absl::UnavailableError(absl::StrCat("cannot listen for metrics on ", listen_address,
                                               ": ", fds.status().message()));
  }
  server->listen_fds_ = std::move(fds).value();
  server->port_ = BoundPort(server->listen_fds_.front());
  int wake[2];
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  server->wake_read_fd_ = wake[0];
  server->wake_write_fd_ = wake[1];
  server->loop_ = std::thread([self = server.get()] { self->Loop(); });
  return server;
}

MetricsHttpServer::~MetricsHttpServer() {
  if (loop_.joinable()) {
    const char byte = 0;
    while (write(wake_write_fd_, &byte, 1) < 0 && errno == EINTR) {
    }
    loop_.join();
  }
  for (int fd : {wake_read_fd_, wake_write_fd_}) {
    if (fd >= 0) close(fd);
  }
  for (int fd : listen_fds_) close(fd);
}

void MetricsHttpServer::Loop() {
  std::vector<Connection> connections;
  absl::Cleanup close_all = [&connections] {
    for (const Connection& c : connections) close(c.fd);
  };
  std::vector<pollfd> polled;
  // Out of descriptors (EMFILE): the listening socket stays readable, so it rests a while instead
  // of spinning on accept.
  absl::Time accept_paused_until = absl::InfinitePast();
  auto close_at = [&](size_t i) {
    close(connections[i].fd);
    connections.erase(connections.begin() + static_cast<std::ptrdiff_t>(i));
  };
  while (true) {
    absl::Time now = MonotonicNow();
    // Deadlines first: a head that has not arrived gets 408, a reply not taken is dropped.
    for (size_t i = connections.size(); i-- > 0;) {
      Connection& c = connections[i];
      if (c.replying() && now > c.accepted + kReplyDeadline) {
        close_at(i);
      } else if (!c.replying() && now > c.accepted + kHeadDeadline) {
        c.reply = ErrorReply(408);
      }
    }
    const bool accepting = now >= accept_paused_until;
    polled.assign({{wake_read_fd_, POLLIN, 0}});
    for (int fd : listen_fds_) polled.push_back({accepting ? fd : -1, POLLIN, 0});
    const size_t first_connection = polled.size();
    absl::Time next_deadline = accepting ? absl::InfiniteFuture() : accept_paused_until;
    for (const Connection& c : connections) {
      polled.push_back({c.fd, static_cast<short>(c.replying() ? POLLOUT : POLLIN), 0});
      next_deadline =
          std::min(next_deadline, c.accepted + (c.replying() ? kReplyDeadline : kHeadDeadline));
    }
    const int timeout_ms = next_deadline == absl::InfiniteFuture()
                               ? -1
                               : static_cast<int>(std::clamp<int64_t>(
                                     absl::ToInt64Milliseconds(next_deadline - now) + 1, 0, 60000));
    if (poll(polled.data(), polled.size(), timeout_ms) < 0) {
      // Only the destructor ends the loop: the listening sockets stay open, so a returned loop
      // left scrapes hanging in the backlog and the replica looked down.
      if (errno != EINTR) {
        std::cerr << "speechllm-server: metrics poll failed: " << std::strerror(errno) << std::endl;
        absl::SleepFor(absl::Milliseconds(100));
      }
      continue;
    }
    if (polled[0].revents != 0) return;  // the destructor
    // Connections, newest first so that erasing one leaves the indices before it valid.
    for (size_t i = connections.size(); i-- > 0;) {
      Connection& c = connections[i];
      const short events = polled[first_connection + i].revents;
      if (events == 0) continue;
      if (!c.replying()) {
        if (!ReadHead(&c)) close_at(i);
        continue;  // the reply goes out when the socket is writable
      }
      const ssize_t n = send(c.fd, c.reply.data() + c.sent, c.reply.size() - c.sent, MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n > 0) c.sent += static_cast<size_t>(n);
      if (n < 0 || c.sent == c.reply.size()) {
        shutdown(c.fd, SHUT_WR);
        close_at(i);
      }
    }
    for (size_t l = 0; l < listen_fds_.size(); ++l) {
      if (polled[1 + l].revents != 0) Accept(listen_fds_[l], &connections, &accept_paused_until);
    }
  }
}

bool MetricsHttpServer::ReadHead(Connection* c) {
  char buffer[4096];
  const size_t room = kMaxHeadBytes - c->received.size();
  const ssize_t n = recv(c->fd, buffer, std::min(sizeof(buffer), room), 0);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) return false;
  if (n > 0) c->received.append(buffer, static_cast<size_t>(n));
  const size_t head_end = RequestHeadEnd(c->received);
  if (head_end != std::string::npos) {
    c->reply = ReplyTo(absl::string_view(c->received).substr(0, head_end),
                       [this] { return metrics_->Scrape(); });
  } else if (c->received.size() >= kMaxHeadBytes) {
    c->reply = ErrorReply(431);
  }
  return true;
}

void MetricsHttpServer::Accept(int listen_fd, std::vector<Connection>* connections_out,
                               absl::Time* accept_paused_until) {
  std::vector<Connection>& connections = *connections_out;
  while (true) {
    const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
        *accept_paused_until = MonotonicNow() + absl::Milliseconds(100);
      break;  // EAGAIN: all taken
    }
    if (static_cast<int>(connections.size()) >= kMaxConnections) {
      // The oldest connection still sending its head gives way (a slow client cannot lock the
      // scraper out); when all are being answered, the new one waits for none of them.
      auto oldest = std::find_if(connections.begin(), connections.end(),
                                 [](const Connection& c) { return !c.replying(); });
      if (oldest == connections.end()) {
        close(fd);
        continue;
      }
      close(oldest->fd);
      connections.erase(oldest);
    }
    Connection c;
    c.fd = fd;
    c.accepted = MonotonicNow();
    // A scraper sends its request with the connection: read it now, so that it is being answered
    // (and never evicted) before a burst of idle connections behind it is accepted. Read at the
    // next poll instead, the scraper's connection was as evictable as theirs (5 of 20 scrapes
    // failed beside two threads opening connections).
    if (!ReadHead(&c)) {
      close(fd);
      continue;
    }
    connections.push_back(std::move(c));
  }
}

}  // namespace speechllm::server
