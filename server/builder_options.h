// Settings every grpc::ServerBuilder of speechllm-server gets (the main port and the
// --health_listen probe port): no SO_REUSEPORT, so a second server on a taken port fails to start
// instead of taking part of its calls, and the reflection service only where it is wanted. Used by
// main.cc on the main thread while it builds the servers.
#ifndef SPEECHLLM_SERVER_BUILDER_OPTIONS_H_
#define SPEECHLLM_SERVER_BUILDER_OPTIONS_H_

#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <memory>
#include <string>

namespace speechllm::server {

// libgrpc++_reflection registers its plugin for every builder as soon as it is loaded, so
// leaving the plugin out is the only way to serve without reflection.
void ApplyBuilderOptions(grpc::ServerBuilder* builder, bool reflection);

// The --health_listen port: plaintext, `health` alone (no reflection), messages of at most 4 KiB
// (a Health request; gRPC's default is 4 MiB). nullptr when it cannot listen.
std::unique_ptr<grpc::Server> StartProbeServer(const std::string& address, grpc::Service* health);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_BUILDER_OPTIONS_H_
