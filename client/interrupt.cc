#include "client/interrupt.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

namespace speechllm::client {
namespace {

// Only lock-free atomics and write(2)/_exit(2) inside the handler (async-signal-safe).
std::atomic<bool> interrupted{false};
std::atomic<const char*> interrupt_message{""};
static_assert(std::atomic<bool>::is_always_lock_free);
static_assert(std::atomic<const char*>::is_always_lock_free);

extern "C" void OnInterrupt(int signal_number) {
  if (interrupted.exchange(true)) _exit(128 + signal_number);
  const char* message = interrupt_message.load();
  (void)!write(STDERR_FILENO, message, std::strlen(message));
}

}  // namespace

void CatchInterrupts(const char* message) {
  interrupt_message = message;
  struct sigaction action = {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

bool Interrupted() { return interrupted.load(); }

}  // namespace speechllm::client
