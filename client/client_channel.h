// CreateClientChannel: the gRPC channel a client opens to the server, plaintext or TLS (server
// verification, mutual TLS with a client certificate, a name override), from PEM files. A free
// function; any thread (the CLI, tests and benchmarks call it before starting calls).
#ifndef SPEECHLLM_CLIENT_CLIENT_CHANNEL_H_
#define SPEECHLLM_CLIENT_CLIENT_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace speechllm::client {

// How a client reaches the server: plaintext, or TLS verified against tls_ca_path (the system roots
// when empty), with a client certificate for mutual TLS.
struct ChannelSecurity {
  bool tls = false;                         // implied by any field below
  std::string tls_ca_path;                  // PEM roots for the server certificate
  std::string tls_cert_path, tls_key_path;  // PEM client certificate and key (mutual TLS)
  std::string tls_server_name;              // name to check instead of the target's host

  // `tls`, or any of the fields that only mean something over TLS.
  bool UsesTls() const {
    return tls || !tls_ca_path.empty() || !tls_cert_path.empty() || !tls_key_path.empty() ||
           !tls_server_name.empty();
  }
};

// A channel to `target` ("HOST:PORT"), with `arguments` (e.g. GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL
// for a connection of its own). NOT_FOUND for an unreadable file, INVALID_ARGUMENT for a client
// certificate without its key (or the reverse).
absl::StatusOr<std::shared_ptr<grpc::Channel>> CreateClientChannel(
    const std::string& target, const ChannelSecurity& security,
    grpc::ChannelArguments arguments = grpc::ChannelArguments());

}  // namespace speechllm::client

#endif  // SPEECHLLM_CLIENT_CLIENT_CHANNEL_H_
