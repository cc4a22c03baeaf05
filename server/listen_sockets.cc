#include "server/listen_sockets.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "server/host_port.h"

namespace speechllm::server {
namespace {

bool SameAddress(const SocketAddress& a, const SocketAddress& b) {
  return a.length == b.length && std::memcmp(&a.storage, &b.storage, a.length) == 0;
}

// The port of an IPv4 or IPv6 address, or -1.
int PortOf(const sockaddr_storage& address) {
  if (address.ss_family == AF_INET)
    return ntohs(reinterpret_cast<const sockaddr_in*>(&address)->sin_port);
  if (address.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6*>(&address)->sin6_port);
  return -1;
}

void SetPort(SocketAddress* address, int port) {
  if (address->storage.ss_family == AF_INET) {
    reinterpret_cast<sockaddr_in*>(&address->storage)->sin_port = htons(port);
  } else if (address->storage.ss_family == AF_INET6) {
    reinterpret_cast<sockaddr_in6*>(&address->storage)->sin6_port = htons(port);
  }
}

std::string Describe(const SocketAddress& address) {
  char host[NI_MAXHOST], service[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&address.storage), address.length, host,
                  sizeof(host), service, sizeof(service), NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return "an address";
  }
  return address.storage.ss_family == AF_INET6 ? absl::StrCat("[", host, "]:", service)
                                               : absl::StrCat(host, ":", service);
}

// Errors that say this machine has no such address or family, not that the port is busy.
bool AddressUnusable(int error) {
  return error == EADDRNOTAVAIL || error == EAFNOSUPPORT || error == EPROTONOSUPPORT;
}

// One attempt of ListenOn. `*port_taken` tells the caller that a later address found the port the
// first one was given taken (with port 0 another attempt may find a port free on all of them).
absl::StatusOr<std::vector<int>> ListenOnce(const std::vector<SocketAddress>& addresses,
                                            bool* port_taken) {
  *port_taken = false;
  std::vector<int> fds;
  absl::Cleanup close_all = [&fds] {
    for (int fd : fds) close(fd);
  };
  // IPv6 sockets take IPv4 clients too (Linux's default, so "[::]:P" serves both) unless an IPv4
  // address of the list needs the port as well.
  const bool has_ipv4 = std::any_of(addresses.begin(), addresses.end(), [](const SocketAddress& a) {
    return a.storage.ss_family == AF_INET;
  });
  int port = 0;  // once one socket is bound, the others take its port
  std::string skipped;
  for (SocketAddress address : addresses) {
    if (port > 0) SetPort(&address, port);
    const int family = address.storage.ss_family;
    const int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      if (!AddressUnusable(errno))
        return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
      absl::StrAppend(&skipped, " ", Describe(address), " (", std::strerror(errno), ")");
      continue;
    }
    fds.push_back(fd);
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    // Explicit both ways: net.ipv6.bindv6only=1 would otherwise make "[::]:P" IPv6-only.
    const int v6_only = has_ipv4 ? 1 : 0;
    if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6_only, sizeof(v6_only));
    if (bind(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) != 0 ||
        listen(fd, 64) != 0) {
      const int error = errno;
      close(fd);
      fds.pop_back();
      if (!AddressUnusable(error)) {
        *port_taken = error == EADDRINUSE && port > 0;
        return absl::UnavailableError(absl::StrCat(Describe(address), ": ", std::strerror(error)));
      }
      absl::StrAppend(&skipped, " ", Describe(address), " (", std::strerror(error), ")");
      continue;
    }
    if (port == 0) port = BoundPort(fd);
    if (port <= 0) return absl::UnavailableError("getsockname: no port");
  }
  if (fds.empty()) return absl::UnavailableError(absl::StrCat("no address to bind:", skipped));
  std::vector<int> bound = std::move(fds);
  fds.clear();  // now the caller's
  return bound;
}

}  // namespace

absl::StatusOr<std::vector<SocketAddress>> ResolveListenAddresses(const std::string& host,
                                                                  int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = absl::StrCat(port);
  const int error =
      getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &found);
  if (error != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve \"", host, "\": ", gai_strerror(error)));
  }
  absl::Cleanup free_found = [found] { freeaddrinfo(found); };
  std::vector<SocketAddress> addresses;
  for (const addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_addrlen > sizeof(sockaddr_storage)) continue;
    SocketAddress address;
    std::memcpy(&address.storage, a->ai_addr, a->ai_addrlen);
    address.length = a->ai_addrlen;
    // /etc/hosts may list an address twice; a second socket on it would find the port taken.
    if (std::none_of(addresses.begin(), addresses.end(),
                     [&](const SocketAddress& seen) { return SameAddress(seen, address); }))
      addresses.push_back(address);
  }
  if (addresses.empty())
    return absl::UnavailableError(absl::StrCat("\"", host, "\" has no address"));
  return addresses;
}

absl::StatusOr<std::vector<int>> ListenOn(const std::vector<SocketAddress>& addresses) {
  // Port 0: the port the first socket was given may be taken on another address; it is then
  // given back and another one tried.
  const bool any_port = !addresses.empty() && PortOf(addresses.front().storage) == 0;
  constexpr int kAttempts = 8;
  for (int attempt = 1;; ++attempt) {
    bool port_taken = false;
    absl::StatusOr<std::vector<int>> fds = ListenOnce(addresses, &port_taken);
    if (fds.ok() || !any_port || !port_taken || attempt == kAttempts) return fds;
  }
}

absl::StatusOr<std::vector<int>> ListenOnHost(const std::string& host, int port) {
  absl::StatusOr<std::vector<SocketAddress>> addresses = ResolveListenAddresses(host, port);
  if (!addresses.ok()) return addresses.status();
  return ListenOn(*addresses);
}

int BoundPort(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return -1;
  return PortOf(address);
}

absl::Status CheckPortFree(const std::string& listen_address) {
  const absl::StatusOr<HostPort> address = ParseHostPort(listen_address);
  if (!address.ok() || address->host.empty() || address->port == 0) return absl::OkStatus();
  absl::StatusOr<std::vector<int>> fds = ListenOnHost(address->host, address->port);
  if (!fds.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen_address, ": ", fds.status().message()));
  }
  for (int fd : *fds) close(fd);
  return absl::OkStatus();
}

}  // namespace speechllm::server
