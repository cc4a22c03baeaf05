// ShutdownSignals: SIGINT and SIGTERM start speechllm-server's drain. The process-wide handler
// writes the signal's number to a pipe that main() waits on, so whichever thread the kernel picks
// takes the signal harmlessly (libraries start threads before main(), so blocking the signals
// cannot cover every thread), and signals after the first one do not cut the drain short. Threads
// started after Install() block them, so the waiting thread normally takes them. Install() and
// Wait() are for main()'s thread; the handler runs on any thread.
#ifndef SPEECHLLM_SERVER_SHUTDOWN_SIGNALS_H_
#define SPEECHLLM_SERVER_SHUTDOWN_SIGNALS_H_

#include "absl/status/status.h"

namespace speechllm::server {

class ShutdownSignals {
 public:
  // Installs the handler for SIGINT and SIGTERM (once per process). A signal that arrives before
  // Wait() is kept for it. INTERNAL if the pipe or the handler cannot be set up.
  static absl::Status Install();
  // Blocks until the first signal; returns its number.
  static int Wait();

  // Until StopExitingOnSignal(): a signal ends the process at once with exit code 0, printing
  // `what` is interrupted. For the start-up (credentials, model load, warm-up), which cannot be
  // drained and would otherwise run to the end, open its ports and turn SERVING first: Ctrl-C
  // did nothing for the minutes a large checkpoint takes to load. A watcher thread; call both on
  // main()'s thread, after Install().
  static void ExitOnSignalUntilServing(const char* what);
  // From here on a signal waits for Wait() (the drain). Any signal the watcher had not taken stays
  // for Wait().
  static void StopExitingOnSignal();
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_SHUTDOWN_SIGNALS_H_
