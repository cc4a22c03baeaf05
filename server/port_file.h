// Port files: speechllm-server writes each port it bound (gRPC, metrics) to the file its flag
// names, for scripts and tests that start it on port 0. Called by main.cc on the main thread, once
// per port, as soon as the port is bound.
#ifndef SPEECHLLM_SERVER_PORT_FILE_H_
#define SPEECHLLM_SERVER_PORT_FILE_H_

#include <string>

#include "absl/status/status.h"

namespace speechllm::server {

// Writes `port` and a newline to `path` atomically (a temporary file beside it, then a rename), so
// a reader never sees a partial number. An empty path writes nothing; an error names the path.
absl::Status WritePortFile(const std::string& path, int port);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_PORT_FILE_H_
