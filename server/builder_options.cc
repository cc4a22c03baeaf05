#include "server/builder_options.h"

#include <algorithm>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/security/server_credentials.h>

namespace speechllm::server {
namespace {

// ProtoServerReflectionPlugin::name() in gRPC's reflection library.
constexpr char kReflectionPluginName[] = "proto_server_reflection";

class WithoutReflection : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const std::unique_ptr<grpc::ServerBuilderPlugin>& plugin) {
                                    return plugin->name() == kReflectionPluginName;
                                  }),
                   plugins->end());
  }
};

}  // namespace

void ApplyBuilderOptions(grpc::ServerBuilder* builder, bool reflection) {
  builder->AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (!reflection) builder->SetOption(std::make_unique<WithoutReflection>());
}

std::unique_ptr<grpc::Server> StartProbeServer(const std::string& address, grpc::Service* health) {
  grpc::ServerBuilder builder;
  ApplyBuilderOptions(&builder, /*reflection=*/false);
  int port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(4096);
  builder.RegisterService(health);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  return port == 0 ? nullptr : std::move(server);
}

}  // namespace speechllm::server
