// A client whose network stalls (label integration): the client reaches the real server through a
// TCP proxy that then stops forwarding what the server sends, as a dead mobile link or a frozen
// process would. The server's write in flight can never complete, so the stream's end (QUEUE_FULL
// once its responses pile up) cannot be sent either; after the idle timeout the server cancels the
// call, and its stream slot goes to the next client. gRPC clients themselves keep reading their
// socket while the application does not, so only a stalled connection shows this. A client that
// pauses reading on a 64 KiB window gets its QUEUE_FULL once it reads again: the latency metrics
// count exactly the answers it received, not those the server dropped.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/speech_client.h"
#include "gtest/gtest.h"
#include "tests/integration/ops/ops_harness.h"

namespace speechllm::opstest {
namespace {

// Forwards one TCP connection from a local port to the server; FreezeServerToClient() stops
// reading the server's side (the client's side keeps flowing).
class FreezableProxy {
 public:
  explicit FreezableProxy(int target_port) : target_port_(target_port) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address));
    listen(listen_fd_, 1);
    socklen_t length = sizeof(address);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~FreezableProxy() {
    stop_ = true;
    thread_.join();
    close(listen_fd_);
  }
  int port() const { return port_; }
  void FreezeServerToClient() { frozen_ = true; }

 private:
  void Run() {
    pollfd accept_poll{listen_fd_, POLLIN, 0};
    while (!stop_ && poll(&accept_poll, 1, 50) <= 0) {
    }
    if (stop_) return;
    const int client = accept(listen_fd_, nullptr, nullptr);
    const int server = socket(AF_INET, SOCK_STREAM, 0);
    const int small_buffer = 4096;  // little kernel buffering on the frozen side
    setsockopt(server, SOL_SOCKET, SO_RCVBUF, &small_buffer, sizeof(small_buffer));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(static_cast<uint16_t>(target_port_));
    if (connect(server, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      close(client);
      close(server);
      return;
    }
    char buffer[16384];
    while (!stop_) {
      pollfd fds[2] = {{client, POLLIN, 0}, {server, static_cast<short>(frozen_ ? 0 : POLLIN), 0}};
      if (poll(fds, 2, 50) <= 0) continue;
      if (fds[0].revents & (POLLIN | POLLHUP)) {
        const ssize_t n = read(client, buffer, sizeof(buffer));
        if (n <= 0 || !WriteAll(server, buffer, n)) break;
      }
      if (!frozen_ && (fds[1].revents & (POLLIN | POLLHUP))) {
        const ssize_t n = read(server, buffer, sizeof(buffer));
        if (n <= 0 || !WriteAll(client, buffer, n)) break;
      }
    }
    close(client);
    close(server);
  }
  static bool WriteAll(int fd, const char* data, ssize_t size) {
    while (size > 0) {
      const ssize_t n = write(fd, data, static_cast<size_t>(size));
      if (n <= 0) return false;
      data += n;
      size -= n;
    }
    return true;
  }

  const int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> frozen_{false}, stop_{false};
  std::thread thread_;
};

// A 64 KiB receive window that does not grow (no BDP probing): answers nobody reads stall in
// HTTP/2 flow control instead of filling megabytes of kernel buffers first.
grpc::ChannelArguments FixedSmallWindow() {
  grpc::ChannelArguments arguments;
  arguments.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  arguments.SetInt(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 64 * 1024);
  return arguments;
}

// True once the stream's first answer arrived (it was admitted); waits up to 5 s.
bool WaitForAdmission(client::StreamingClient* client) {
  for (int i = 0; i < 500 && client->responses().empty(); ++i)
    absl::SleepFor(absl::Milliseconds(10));
  return !client->responses().empty();
}

// Sends Flushes, 500 at a time (each is answered), until the server counts its pending-response
// limit, at most 20,000. Returns how many it sent; `filled` says whether the limit was reached
// (if not, the server's non-zero series are printed).
int FlushUntilTheQueueIsFull(client::StreamingClient* client, int metrics_port, bool* filled) {
  const std::string limit = R"(speechllm_limit_exceeded_total{limit="max_pending_responses"})";
  int flushes = 0;
  *filled = false;
  while (flushes < 20000 && !*filled) {
    for (int i = 0; i < 500; ++i, ++flushes) (void)client->Flush();
    absl::SleepFor(absl::Milliseconds(200));
    auto now = Scrape(metrics_port);
    if (!now.ok()) {
      ADD_FAILURE() << now.status();
      return flushes;
    }
    *filled = Value(*now, limit) > 0;
    if (!*filled && flushes >= 20000) {
      for (const auto& [series, value] : *now)
        if (value != 0 && series.find("bucket") == std::string::npos)
          std::cout << series << " " << value << "\n";
    }
  }
  return flushes;
}

TEST(OpsStalledClient, AStalledStreamLosesItsSlotAfterTheIdleTimeout) {
  auto server = ServerProcess::Start({"--max_streams=1", "--idle_timeout_s=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  FreezableProxy proxy((*server)->port());
  auto stalled_channel =
      grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", proxy.port()),
                                grpc::InsecureChannelCredentials(), FixedSmallWindow());
  auto stalled_stub = v1::StreamingSpeech::NewStub(stalled_channel);
  client::StreamingClient stalled(stalled_stub.get(), PcmStreamOptions(false));
  ASSERT_TRUE(stalled.Start().ok());
  ASSERT_TRUE(WaitForAdmission(&stalled)) << "not admitted";
  proxy.FreezeServerToClient();
  // Every Flush is answered (an empty final and END_OF_UTTERANCE): the answers stop in the
  // stalled connection, then fill the server's queue.
  bool filled = false;
  const int flushes = FlushUntilTheQueueIsFull(&stalled, (*server)->metrics_port(), &filled);
  ASSERT_TRUE(filled) << "the queue never filled after " << flushes << " Flushes";
  // The only slot is held until the server gives up on the stalled stream.
  auto channel = grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials());
  auto stub = v1::StreamingSpeech::NewStub(channel);
  const absl::Time start = absl::Now();
  grpc::Status admitted;
  do {
    client::StreamingClient next(stub.get(), PcmStreamOptions(false));
    ASSERT_TRUE(next.Start().ok());
    (void)next.CloseSend();
    admitted = next.Await();
    if (!admitted.ok()) absl::SleepFor(absl::Milliseconds(200));
  } while (!admitted.ok() && absl::Now() - start < absl::Seconds(20));
  std::cout << "queue full after " << flushes << " Flushes; a new stream was admitted "
            << absl::FormatDuration(absl::Now() - start) << " later (code " << admitted.error_code()
            << " " << admitted.error_message() << ")\n";
  EXPECT_TRUE(admitted.ok()) << "the stalled stream kept the only slot";
  stalled.Cancel();
  EXPECT_EQ((*server)->Stop(), 0) << (*server)->Log();
}

TEST(OpsStalledClient, LatencyMetricsCountOnlyTheAnswersTheClientGets) {
  auto server = ServerProcess::Start({"--max_pending_responses=64"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto channel = grpc::CreateCustomChannel((*server)->address(), grpc::InsecureChannelCredentials(),
                                           FixedSmallWindow());
  auto stub = v1::StreamingSpeech::NewStub(channel);
  auto before = Scrape((*server)->metrics_port());
  ASSERT_TRUE(before.ok()) << before.status();
  client::StreamingClient client(stub.get(), PcmStreamOptions(false));
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(WaitForAdmission(&client)) << "not admitted";
  client.PauseReads();
  // Every Flush is answered with an empty final: they fill the window, then the server's queue.
  bool filled = false;
  const int flushes = FlushUntilTheQueueIsFull(&client, (*server)->metrics_port(), &filled);
  ASSERT_TRUE(filled) << "the queue never filled after " << flushes << " Flushes";
  const grpc::Status status = client.Await();  // reads again: what was written, then the status
  int finals = 0;
  for (const auto& record : client.responses()) {
    finals += record.response.has_transcript() && record.response.transcript().is_final();
  }
  auto after = Scrape((*server)->metrics_port());
  ASSERT_TRUE(after.ok()) << after.status();
  const std::string counted = "speechllm_flush_latency_seconds_count";
  const double delta = Value(*after, counted) - Value(*before, counted);
  std::cout << flushes << " Flushes; status " << status.error_code() << " \""
            << status.error_message() << "\"; the client got " << finals
            << " finals, the flush latency histogram counted " << delta << "\n";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_GT(finals, 0);
  EXPECT_EQ(delta, finals);
  EXPECT_EQ((*server)->Stop(), 0) << (*server)->Log();
}

}  // namespace
}  // namespace speechllm::opstest
