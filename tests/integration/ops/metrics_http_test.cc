// The metrics port against hostile or broken clients (label unit, MetricsHttpServer in process):
// a head that never ends is cut at 8 KiB, slow clients cannot lock a scrape out, idle sockets do
// not pile up as open file descriptors, a process out of descriptors does not make it spin, and the
// replies follow HTTP/1.1 (HEAD, 404, 405, 400).
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/metrics.h"
#include "server/metrics_http.h"
#include "tests/integration/ops/ops_harness.h"

namespace speechllm::opstest {
namespace {

using server::Metrics;
using server::MetricsHttpServer;

int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    close(fd);
    return -1;
  }
  const timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  return fd;
}

// Everything the server sends until it closes (or 5 s pass).
std::string ReadAll(int fd) {
  std::string out;
  char buffer[4096];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) out.append(buffer, n);
  return out;
}

std::string Exchange(int port, const std::string& request) {
  const int fd = Connect(port);
  if (fd < 0) return "";
  send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string reply = ReadAll(fd);
  close(fd);
  return reply;
}

int OpenFds() {
  int count = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (readdir(dir) != nullptr) ++count;
    closedir(dir);
  }
  return count;
}

class MetricsHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto started = MetricsHttpServer::Start("127.0.0.1:0", &metrics_);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
  }
  Metrics metrics_{"1.2.3"};
  std::unique_ptr<MetricsHttpServer> server_;
};

TEST_F(MetricsHttpTest, RepliesFollowHttp11) {
  const int port = server_->port();
  const std::string get = Exchange(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(get.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << get.substr(0, 200);
  EXPECT_NE(get.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(get.find("speechllm_build_info{version=\"1.2.3\"} 1"), std::string::npos);
  const std::string body = get.substr(get.find("\r\n\r\n") + 4);
  EXPECT_NE(get.find(absl::StrCat("Content-Length: ", body.size(), "\r\n")), std::string::npos);
  const std::string head = Exchange(port, "HEAD /metrics?x=1 HTTP/1.0\n\n");  // bare LFs
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << head;
  EXPECT_EQ(head.size(), head.find("\r\n\r\n") + 4) << "HEAD has no body";
  for (const auto& [request, status] : std::vector<std::pair<std::string, std::string>>{
           {"GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", "404"},
           // RFC 9112 3.2.2: the absolute form is the same request (it was 404).
           {"GET http://x:9090/metrics HTTP/1.1\r\nHost: x:9090\r\n\r\n", "200"},
           {"GET HTTP://x/nope?y HTTP/1.1\r\nHost: x\r\n\r\n", "404"},
           {"POST /metrics HTTP/1.1\r\nhost: x\r\nContent-Length: 0\r\n\r\n", "405"},
           {"GET /metrics HTTP/1.1\r\nX-Host: x\r\n\r\n", "400"},  // RFC 9112 3.2: no Host
           {"GET /metrics\r\n\r\n", "400"},
           {"GET /metrics HTTP/2.0\r\n\r\n", "505"},
           {"\x16\x03\x01 binary bytes\r\n\r\n", "400"}}) {
    const std::string reply = Exchange(port, request);
    EXPECT_EQ(reply.rfind("HTTP/1.1 " + status + " ", 0), 0u) << request << " -> " << reply;
  }
  // The harness's HTTP client (cpp-httplib) and promtool-style parsing still work.
  auto scraped = Scrape(port);
  ASSERT_TRUE(scraped.ok()) << scraped.status();
  EXPECT_EQ(Value(*scraped, R"(speechllm_build_info{version="1.2.3"})"), 1);
}

// A client that sends header lines without end is cut off at 8 KiB (cpp-httplib 0.11 kept them
// all: one connection grew the server by 1.4 GB in 15 s).
TEST_F(MetricsHttpTest, AHeadWithoutEndIsCutOffAtItsLimit) {
  const int fd = Connect(server_->port());
  ASSERT_GE(fd, 0);
  std::string line = "X-Filler: " + std::string(1000, 'a') + "\r\n";
  std::string first = "GET /metrics HTTP/1.1\r\n";
  size_t sent = 0;
  bool refused = false;
  const auto start = std::chrono::steady_clock::now();
  send(fd, first.data(), first.size(), MSG_NOSIGNAL);
  while (sent < (50u << 20) &&
         std::chrono::steady_clock::now() - start < std::chrono::seconds(10)) {
    const ssize_t n = send(fd, line.data(), line.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      refused = true;
      break;
    }
    sent += static_cast<size_t>(n);
  }
  close(fd);
  std::printf("header bytes the socket took before the server closed it: %zu\n", sent);
  EXPECT_TRUE(refused) << "the server read " << sent << " bytes of headers without closing";
  EXPECT_LT(sent, 16u << 20);
  EXPECT_EQ(Exchange(server_->port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n").rfind("HTTP/1.1 200", 0),
            0u);
}

// Forty connections that never finish their head: a scrape still gets through at once (the
// oldest slow one gives way), and the slow ones get 408 after the head deadline.
TEST_F(MetricsHttpTest, SlowClientsDoNotLockTheScraperOut) {
  std::vector<int> slow;
  for (int i = 0; i < 40; ++i) {
    const int fd = Connect(server_->port());
    ASSERT_GE(fd, 0);
    send(fd, "GET /metrics HTTP/1.1\r\nX-a: b\r\n", 31, MSG_NOSIGNAL);
    slow.push_back(fd);
  }
  const auto start = std::chrono::steady_clock::now();
  auto scraped = Scrape(server_->port());
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  std::printf("scrape beside 40 unfinished requests: %s in %.1f ms\n",
              scraped.ok() ? "OK" : scraped.status().ToString().c_str(), ms);
  EXPECT_TRUE(scraped.ok()) << scraped.status();
  EXPECT_LT(ms, 1000);
  // The newest slow client is still held and answered 408 once its 2 s have passed.
  const std::string timed_out = ReadAll(slow.back());
  EXPECT_EQ(timed_out.rfind("HTTP/1.1 408 ", 0), 0u) << timed_out;
  for (int fd : slow) close(fd);
}

// Idle sockets are accepted and dropped past the connection limit, so they do not hold the
// process's descriptors (which gRPC's port needs too).
TEST_F(MetricsHttpTest, IdleSocketsDoNotPileUpAsOpenDescriptors) {
  const int before = OpenFds();
  std::vector<int> idle;
  for (int i = 0; i < 300; ++i) {
    const int fd = Connect(server_->port());
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  absl::SleepFor(absl::Milliseconds(300));  // the loop accepts them all
  const int server_side = OpenFds() - before - static_cast<int>(idle.size());
  std::printf("300 idle client sockets: the server holds %d of its own\n", server_side);
  EXPECT_LE(server_side, MetricsHttpServer::kMaxConnections);
  EXPECT_TRUE(Scrape(server_->port()).ok());
  for (int fd : idle) close(fd);
}

// With every descriptor of the process taken (a busy gRPC port, say), accept fails with EMFILE
// while the listening socket stays readable: the loop rests instead of spinning a core, and serves
// the waiting connection once descriptors are free again.
TEST_F(MetricsHttpTest, OutOfDescriptorsTheLoopRestsInsteadOfSpinning) {
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit lower = saved;
  lower.rlim_cur = static_cast<rlim_t>(OpenFds() + 16);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &lower), 0);
  std::vector<int> filler;
  for (int fd; (fd = dup(STDERR_FILENO)) >= 0;) filler.push_back(fd);
  close(filler.back());  // one for the client: the server has none to accept it with
  filler.pop_back();
  const int client = Connect(server_->port());
  ASSERT_GE(client, 0);
  timespec cpu_before{}, cpu_after{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu_before);
  absl::SleepFor(absl::Milliseconds(500));
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu_after);
  const double cpu_ms =
      (cpu_after.tv_sec - cpu_before.tv_sec) * 1e3 + (cpu_after.tv_nsec - cpu_before.tv_nsec) / 1e6;
  for (int fd : filler) close(fd);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  std::printf("CPU used in 500 ms without descriptors: %.1f ms\n", cpu_ms);
  EXPECT_LT(cpu_ms, 100) << "the loop spun on a failing accept";
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  send(client, request.data(), request.size(), MSG_NOSIGNAL);
  const std::string reply = ReadAll(client);
  close(client);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 ", 0), 0u) << reply;
}

}  // namespace
}  // namespace speechllm::opstest
