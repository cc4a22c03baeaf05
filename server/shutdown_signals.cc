#include "server/shutdown_signals.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace speechllm::server {
namespace {

int read_fd = -1;
volatile sig_atomic_t write_fd = -1;

void OnSignal(int signal_number) {
  const int saved_errno = errno;
  const unsigned char byte = static_cast<unsigned char>(signal_number);
  // Non-blocking: with the pipe full (signals nobody waits for) the byte is dropped.
  [[maybe_unused]] const ssize_t written = ::write(write_fd, &byte, 1);
  errno = saved_errno;
}

}  // namespace

absl::Status ShutdownSignals::Install() {
  if (read_fd >= 0) return absl::OkStatus();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe for signals: ", std::strerror(errno)));
  }
  ::fcntl(fds[1], F_SETFL, ::fcntl(fds[1], F_GETFL) | O_NONBLOCK);
  read_fd = fds[0];
  write_fd = fds[1];
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = &OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (const int signal_number : {SIGINT, SIGTERM}) {
    if (::sigaction(signal_number, &action, nullptr) != 0) {
      return absl::InternalError(
          absl::StrCat("sigaction(", signal_number, "): ", std::strerror(errno)));
    }
  }
  return absl::OkStatus();
}

int ShutdownSignals::Wait() {
  unsigned char byte = 0;
  while (true) {
    const ssize_t n = ::read(read_fd, &byte, 1);
    if (n == 1) return byte;
    if (n < 0 && errno == EINTR) continue;
    return SIGTERM;  // the pipe failed: stop rather than run unstoppable
  }
}

}  // namespace speechllm::server
