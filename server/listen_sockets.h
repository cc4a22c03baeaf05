// Listening TCP sockets for the metrics port: one on every address a host name resolves to (for
// "localhost" on a stock Debian, ::1 and 127.0.0.1), all on one port, as gRPC binds --listen, so a
// scraper reaches the port whichever of the addresses it uses. Plain functions; called by
// MetricsHttpServer::Start on the main thread. The caller owns (and closes) the descriptors.
#ifndef SPEECHLLM_SERVER_LISTEN_SOCKETS_H_
#define SPEECHLLM_SERVER_LISTEN_SOCKETS_H_

#include <sys/socket.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace speechllm::server {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
};

// The addresses `host` resolves to for listening on `port`, each once, in resolver order;
// UNAVAILABLE when it resolves to none.
absl::StatusOr<std::vector<SocketAddress>> ResolveListenAddresses(const std::string& host,
                                                                  int port);

// Non-blocking listening sockets on `addresses`, all on one port: the addresses' own, or for port
// 0 the one the first bound socket was given (tried again with another if that one is taken on a
// later address). An address this machine cannot bind (an IPv6 one where IPv6 is off) is left
// out; UNAVAILABLE when the port is taken on any address, or when no address could be bound.
// IPv6 sockets also take IPv4 clients ("[::]:P" serves both) unless the list has an IPv4 address
// too, which then takes them.
absl::StatusOr<std::vector<int>> ListenOn(const std::vector<SocketAddress>& addresses);

// ListenOn the addresses `host` resolves to for `port` (ResolveListenAddresses' error if none).
absl::StatusOr<std::vector<int>> ListenOnHost(const std::string& host, int port);

// The port a listening socket is bound to, or -1.
int BoundPort(int fd);

// Whether gRPC will be able to listen on `listen_address` (HOST:PORT): binds it as ListenOn does
// and lets go at once, so that a taken port stops the server before the model loads instead of
// after it (minutes for a large checkpoint). UNAVAILABLE "cannot listen on ..." when taken; OK for
// port 0 and for addresses ServerConfig::Validate refuses (it names them).
absl::Status CheckPortFree(const std::string& listen_address);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_LISTEN_SOCKETS_H_
