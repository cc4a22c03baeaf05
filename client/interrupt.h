// Ctrl-C for the client programs (speechllm-client, speechllm-loadtest): the first SIGINT or
// SIGTERM only sets a flag the program polls (it then ends its input and still reports what it
// measured), a second one exits at once with 128 + the signal number. Process-wide; installed once
// from main(), read from any thread.
#ifndef SPEECHLLM_CLIENT_INTERRUPT_H_
#define SPEECHLLM_CLIENT_INTERRUPT_H_

namespace speechllm::client {

// Installs the handlers. `message` (a string literal) is written to stderr at the first signal.
void CatchInterrupts(const char* message);
// True once the first SIGINT or SIGTERM arrived.
bool Interrupted();

}  // namespace speechllm::client

#endif  // SPEECHLLM_CLIENT_INTERRUPT_H_
