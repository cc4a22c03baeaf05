// The metrics port's listening sockets (label unit): one socket on every address a host resolves
// to, all on one port (a stock Debian resolves "localhost" to ::1 and 127.0.0.1, and the port used
// to be bound on the first only, so a scraper of 127.0.0.1 found nothing); a port taken on any of
// them is an error that names it; an address this machine lacks is left out; "[::]" alone also
// serves IPv4 clients.
#include "server/listen_sockets.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace speechllm::server {
namespace {

SocketAddress Numeric(const std::string& host, int port) {
  auto resolved = ResolveListenAddresses(host, port);
  EXPECT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_EQ(resolved->size(), 1u);
  return resolved->front();
}

// Whether a TCP socket can be bound on ::1 here (IPv6 may be off).
bool LoopbackV6Usable() {
  const int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  const SocketAddress address = Numeric("::1", 0);
  const bool bound =
      bind(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) == 0;
  close(fd);
  return bound;
}

bool Connects(const std::string& host, int port) {
  const SocketAddress address = Numeric(host, port);
  const int fd = socket(address.storage.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool connected =
      connect(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length) == 0;
  close(fd);
  return connected;
}

void CloseAll(const std::vector<int>& fds) {
  for (int fd : fds) close(fd);
}

TEST(ListenSocketsTest, EveryAddressGetsASocketOnOnePort) {
  const bool v6 = LoopbackV6Usable();
  auto fds = ListenOn({Numeric("127.0.0.1", 0), Numeric("::1", 0)});
  ASSERT_TRUE(fds.ok()) << fds.status();
  std::printf("IPv6 %s: %zu listening sockets\n", v6 ? "usable" : "off", fds->size());
  ASSERT_EQ(fds->size(), v6 ? 2u : 1u);
  const int port = BoundPort(fds->front());
  ASSERT_GT(port, 0);
  EXPECT_TRUE(Connects("127.0.0.1", port));
  if (v6) {
    EXPECT_EQ(BoundPort((*fds)[1]), port) << "both addresses on the one port";
    EXPECT_TRUE(Connects("::1", port));
  }
  CloseAll(*fds);
}

// "[::]:P" alone serves IPv4 clients too (Linux's dual-stack default); with an IPv4 address in
// the same list the IPv6 socket keeps to IPv6, so that both can hold the port.
TEST(ListenSocketsTest, TheIpv6WildcardAloneAlsoServesIpv4) {
  if (!LoopbackV6Usable()) {
    std::printf("IPv6 is off here: \"::\" cannot be bound, nothing to check\n");
    auto fds = ListenOn({Numeric("::", 0)});
    EXPECT_FALSE(fds.ok());
    return;
  }
  auto fds = ListenOn({Numeric("::", 0)});
  ASSERT_TRUE(fds.ok()) << fds.status();
  ASSERT_EQ(fds->size(), 1u);
  const int port = BoundPort(fds->front());
  EXPECT_TRUE(Connects("::1", port));
  EXPECT_TRUE(Connects("127.0.0.1", port)) << "an IPv4 client of [::]:" << port;
  CloseAll(*fds);
  auto both = ListenOn({Numeric("0.0.0.0", 0), Numeric("::", 0)});
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(both->size(), 2u);
  CloseAll(*both);
}

TEST(ListenSocketsTest, APortTakenOnAnyAddressIsAnErrorThatNamesIt) {
  const std::string taken_host = LoopbackV6Usable() ? "::1" : "127.0.0.1";
  auto taker = ListenOn({Numeric(taken_host, 0)});
  ASSERT_TRUE(taker.ok()) << taker.status();
  const int port = BoundPort(taker->front());
  auto fds = ListenOn({Numeric("127.0.0.1", port), Numeric(taken_host, port)});
  ASSERT_FALSE(fds.ok());
  std::printf("%s\n", fds.status().ToString().c_str());
  EXPECT_EQ(fds.status().code(), absl::StatusCode::kUnavailable);
  const std::string taken =
      taken_host == "::1" ? absl::StrCat("[::1]:", port) : absl::StrCat("127.0.0.1:", port);
  EXPECT_NE(fds.status().message().find(taken), std::string::npos) << fds.status();
  EXPECT_NE(fds.status().message().find("in use"), std::string::npos) << fds.status();
  CloseAll(*taker);
  // The socket the failed call had bound on 127.0.0.1 was closed: the port is free there.
  auto again = ListenOn({Numeric("127.0.0.1", port)});
  EXPECT_TRUE(again.ok()) << again.status();
  if (again.ok()) CloseAll(*again);
}

TEST(ListenSocketsTest, AnAddressThisMachineLacksIsLeftOut) {
  const SocketAddress elsewhere = Numeric("192.0.2.1", 0);  // TEST-NET-1 (RFC 5737)
  auto fds = ListenOn({elsewhere, Numeric("127.0.0.1", 0)});
  ASSERT_TRUE(fds.ok()) << fds.status();
  EXPECT_EQ(fds->size(), 1u);
  EXPECT_TRUE(Connects("127.0.0.1", BoundPort(fds->front())));
  CloseAll(*fds);
  auto none = ListenOn({elsewhere});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(none.status().message().find("192.0.2.1"), std::string::npos) << none.status();
}

}  // namespace
}  // namespace speechllm::server
