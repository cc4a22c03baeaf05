// Settings every grpc::ServerBuilder of speechllm-server gets (the main port and the
// --health_listen probe port): no SO_REUSEPORT, so a second server on a taken port fails to start
// instead of taking part of its calls, and the reflection service only where it is wanted. Used by
// main.cc on the main thread while it builds the servers.
#ifndef SPEECHLLM_SERVER_BUILDER_OPTIONS_H_
#define SPEECHLLM_SERVER_BUILDER_OPTIONS_H_

#include <grpcpp/server_builder.h>

namespace speechllm::server {

// libgrpc++_reflection registers its plugin for every builder as soon as it is loaded, so
// leaving the plugin out is the only way to serve without reflection.
void ApplyBuilderOptions(grpc::ServerBuilder* builder, bool reflection);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_BUILDER_OPTIONS_H_
