// HostPort: a listening address ("HOST:PORT", "[V6]:PORT", ":PORT") split into host and port, for
// the metrics port's bind and ServerConfig's check that --health_listen does not take --listen's
// port. A pure function; any thread.
#ifndef SPEECHLLM_SERVER_HOST_PORT_H_
#define SPEECHLLM_SERVER_HOST_PORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace speechllm::server {

struct HostPort {
  std::string host;  // brackets of an IPv6 literal removed; empty for ":PORT"
  int port = 0;      // 0: the system picks a free port
};

// INVALID_ARGUMENT quoting `address` when it has no colon or no port in [0, 65535].
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_HOST_PORT_H_
