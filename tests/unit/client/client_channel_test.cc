// ChannelSecurity::UsesTls: every TLS flag of the client programs turns TLS on, as `--tls`'s help
// says ("implied by the other --tls flags"); `--tls-server-name` alone used to connect in
// plaintext and fail with a bare "Socket closed".
#include "client/client_channel.h"

#include "gtest/gtest.h"

namespace speechllm::client {
namespace {

TEST(ChannelSecurityTest, EveryTlsFieldTurnsTlsOn) {
  EXPECT_FALSE(ChannelSecurity().UsesTls());
  for (std::string ChannelSecurity::*field :
       {&ChannelSecurity::tls_ca_path, &ChannelSecurity::tls_cert_path,
        &ChannelSecurity::tls_key_path, &ChannelSecurity::tls_server_name}) {
    ChannelSecurity security;
    security.*field = "x";
    EXPECT_TRUE(security.UsesTls());
  }
  ChannelSecurity plain_flag;
  plain_flag.tls = true;
  EXPECT_TRUE(plain_flag.UsesTls());
}

}  // namespace
}  // namespace speechllm::client
