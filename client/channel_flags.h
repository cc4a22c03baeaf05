// The command-line flags of how a client program reaches the server: --tls, --tls-ca,
// --tls-cert, --tls-key, --tls-server-name, --token and --token-file, defined once for
// speechllm-client and speechllm-loadtest. Read on the program's main thread after
// absl::ParseCommandLine.
#ifndef SPEECHLLM_CLIENT_CHANNEL_FLAGS_H_
#define SPEECHLLM_CLIENT_CHANNEL_FLAGS_H_

#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "client/client_channel.h"

namespace speechllm::client {

// The TLS flags as a ChannelSecurity for CreateClientChannel.
ChannelSecurity ChannelSecurityFromFlags();

// {"authorization", "Bearer <token>"} when --token or --token_file is set (after
// CheckChannelFlags has accepted them).
std::optional<std::pair<std::string, std::string>> AuthorizationFromFlags();

// INVALID_ARGUMENT for a token without TLS (a bearer token must not travel in plaintext; the
// server refuses tokens without TLS as well), for --token with --token_file, and for a token file
// that cannot be read or holds no token.
absl::Status CheckChannelFlags();

}  // namespace speechllm::client

#endif  // SPEECHLLM_CLIENT_CHANNEL_FLAGS_H_
