// ChannelSecurity::UsesTls: every TLS flag of the client programs turns TLS on, as `--tls`'s help
// says ("implied by the other --tls flags"); `--tls-server-name` alone used to connect in
// plaintext and fail with a bare "Socket closed". A credentials file that is not PEM is refused.
#include "client/client_channel.h"

#include <fstream>
#include <string>

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

// A --tls-ca that is not PEM is refused naming the file; gRPC itself logged errors and the call
// failed with "empty address list".
TEST(ChannelSecurityTest, AFileThatIsNotPemIsRefusedNamingIt) {
  const std::string path = ::testing::TempDir() + "client_channel_not_pem.crt";
  std::ofstream(path) << "not a certificate";
  ChannelSecurity security;
  security.tls_ca_path = path;
  const auto channel = CreateClientChannel("127.0.0.1:1", security);
  ASSERT_FALSE(channel.ok());
  EXPECT_EQ(channel.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(channel.status().message().find(path + " is not PEM"), std::string::npos)
      << channel.status();
}

}  // namespace
}  // namespace speechllm::client
