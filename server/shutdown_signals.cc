#include "server/shutdown_signals.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"

namespace speechllm::server {
namespace {

int read_fd = -1;
volatile sig_atomic_t write_fd = -1;
int stop_watch_fds[2] = {-1, -1};  // the watcher's stop pipe
std::thread* watcher = nullptr;

// SIGINT and SIGTERM, to block or unblock in the calling thread.
void SetShutdownSignalsBlocked(bool blocked) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &signals, nullptr);
}

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
  // Threads started from here on (the engine, gRPC's pollers and executors) inherit the signals
  // blocked, so the kernel hands them to the thread that waits for them: the start-up watcher,
  // then Wait(). A signal meanwhile stays pending for it. (Under ThreadSanitizer, whose handler
  // defers ours to the receiving thread's next intercepted call, a thread parked for ever would
  // hold the signal.)
  SetShutdownSignalsBlocked(true);
  return absl::OkStatus();
}

int ShutdownSignals::Wait() {
  SetShutdownSignalsBlocked(false);  // this thread takes them now (see Install)
  unsigned char byte = 0;
  while (true) {
    // poll, with a timeout, before the read: ThreadSanitizer runs a handler deferred on this
    // thread only when one of its interceptors returns, and a read blocked on the pipe never did
    // (the TSan-built server never drained). A plain build wakes on the signal's byte.
    pollfd readable = {read_fd, POLLIN, 0};
    if (::poll(&readable, 1, 1000) == 0) continue;
    const ssize_t n = ::read(read_fd, &byte, 1);
    if (n == 1) return byte;
    if (n < 0 && errno == EINTR) continue;
    return SIGTERM;  // the pipe failed: stop rather than run unstoppable
  }
}

void ShutdownSignals::ExitOnSignalUntilServing(const char* what) {
  if (read_fd < 0 || watcher != nullptr || ::pipe2(stop_watch_fds, O_CLOEXEC) != 0) return;
  watcher = new std::thread([what] {
    SetShutdownSignalsBlocked(false);  // the one thread that takes them during the start-up
    pollfd fds[2] = {{stop_watch_fds[0], POLLIN, 0}, {read_fd, POLLIN, 0}};
    while (true) {
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (fds[0].revents != 0) return;  // serving: the signal (if any) is the drain's
      unsigned char byte = 0;
      if (fds[1].revents != 0 && ::read(read_fd, &byte, 1) == 1) {
        std::fprintf(stderr, "speechllm-server: signal %d during the %s: stopped before serving\n",
                     byte, what);
        std::fflush(stderr);
        std::_Exit(0);
      }
    }
  });
}

void ShutdownSignals::StopExitingOnSignal() {
  if (watcher == nullptr) return;
  const unsigned char byte = 1;
  [[maybe_unused]] const ssize_t written = ::write(stop_watch_fds[1], &byte, 1);
  watcher->join();
  delete watcher;
  watcher = nullptr;
  ::close(stop_watch_fds[0]);
  ::close(stop_watch_fds[1]);
}

}  // namespace speechllm::server
