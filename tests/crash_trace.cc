// Prints a symbolized stack trace when a test binary crashes (SIGSEGV, SIGABRT, ...), so a crash
// seen only on another machine (the GPU hosts, with another libtorch) comes back with its call
// site. Linked into the torch test binaries; runs from a static initializer before main.
#include "absl/debugging/failure_signal_handler.h"
#include "absl/debugging/symbolize.h"

namespace {

const bool kCrashTraceInstalled = [] {
  absl::InitializeSymbolizer("/proc/self/exe");
  absl::InstallFailureSignalHandler(absl::FailureSignalHandlerOptions());
  return true;
}();

}  // namespace
