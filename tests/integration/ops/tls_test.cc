// TLS, mutual TLS and bearer tokens on the real speechllm-server (label integration), with a CA,
// a server certificate for 127.0.0.1 (IP SAN) and client certificates made by openssl at test
// time: a TLS client with a token succeeds; plaintext fails; a missing or wrong token is
// UNAUTHENTICATED before any stream state exists (no stream, no engine sequence, no call counted);
// health stays open (also on the plaintext probe port), reflection does not; mutual TLS rejects a
// client without a certificate and one whose certificate comes from another CA.
#include <future>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/client_channel.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/generic/generic_stub.h"
#include "gtest/gtest.h"
#include "tests/integration/ops/ops_harness.h"

namespace speechllm::opstest {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kToken[] = "ops-test-token-0123456789abcdef";

struct Certificates {
  std::string ca, server_cert, server_key, client_cert, client_key, rogue_cert, rogue_key;
};

// openssl ARGS in `dir`; the error names the step.
absl::Status OpenSsl(const std::string& openssl, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {openssl};
  argv.insert(argv.end(), args.begin(), args.end());
  const ProcessResult result = RunProcess(argv);
  if (result.exit_code == 0) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("openssl ", absl::StrJoin(args, " "), " failed (",
                                          result.exit_code, "): ", result.err));
}

// A CA with a server certificate (127.0.0.1, localhost) and a client certificate, plus a client
// certificate from a second, unrelated CA. P-256 keys: fast to make.
absl::StatusOr<Certificates> MakeCertificates() {
  auto openssl = RequireTool("openssl", "openssl");
  if (!openssl.ok()) return openssl.status();
  const std::string d = ScratchDir() + "/pki-";
  const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                       "-nodes"};
  auto make_ca = [&](const std::string& name) {
    std::vector<std::string> args = {"req", "-x509"};
    args.insert(args.end(), ec.begin(), ec.end());
    args.insert(args.end(),
                {"-keyout", d + name + ".key", "-out", d + name + ".pem", "-days", "2", "-subj",
                 "/CN=speechllm ops test " + name, "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign"});
    return OpenSsl(*openssl, args);
  };
  auto make_leaf = [&](const std::string& name, const std::string& ca, const std::string& subject,
                       const std::string& extensions) -> absl::Status {
    if (!WriteTextFile(d + name + ".ext", extensions)) return absl::InternalError("write .ext");
    std::vector<std::string> args = {"req", "-new"};
    args.insert(args.end(), ec.begin(), ec.end());
    args.insert(args.end(),
                {"-keyout", d + name + ".key", "-out", d + name + ".csr", "-subj", subject});
    if (absl::Status s = OpenSsl(*openssl, args); !s.ok()) return s;
    return OpenSsl(*openssl, {"x509", "-req", "-in", d + name + ".csr", "-CA", d + ca + ".pem",
                              "-CAkey", d + ca + ".key", "-CAcreateserial", "-out",
                              d + name + ".pem", "-days", "2", "-extfile", d + name + ".ext"});
  };
  for (absl::Status s :
       {make_ca("ca"), make_ca("rogue-ca"),
        make_leaf("server", "ca", "/CN=127.0.0.1",
                  "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"),
        make_leaf("client", "ca", "/CN=ops-test-client", "extendedKeyUsage=clientAuth\n"),
        make_leaf("rogue", "rogue-ca", "/CN=ops-test-rogue", "extendedKeyUsage=clientAuth\n")}) {
    if (!s.ok()) return s;
  }
  return Certificates{d + "ca.pem",     d + "server.pem", d + "server.key", d + "client.pem",
                      d + "client.key", d + "rogue.pem",  d + "rogue.key"};
}

std::vector<std::pair<std::string, std::string>> Bearer(const std::string& token) {
  return {{"authorization", "Bearer " + token}};
}

std::unique_ptr<v1::StreamingSpeech::Stub> Stub(const std::string& address,
                                                const client::ChannelSecurity& security) {
  auto channel = client::CreateClientChannel(address, security);
  EXPECT_TRUE(channel.ok()) << channel.status();
  return v1::StreamingSpeech::NewStub(*channel);
}

// An empty unary call to any method (reflection, here), for its status.
grpc::Status GenericCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Slice empty_message("");
  grpc::ByteBuffer request(&empty_message, 1), response;
  std::promise<grpc::Status> done;
  stub.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status status) { done.set_value(std::move(status)); });
  return done.get_future().get();
}

grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel, bool* serving) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = stub->Check(&context, request, &response);
  *serving = response.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  return status;
}

class OpsTls : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    if (server_ != nullptr) {
      EXPECT_EQ(server_->Stop(), 0) << server_->Log();
    }
    server_.reset();
  }
  void SetUp() override {
    if (server_ != nullptr) return;
    auto certificates = MakeCertificates();
    ASSERT_TRUE(certificates.ok()) << certificates.status();
    certificates_ = *certificates;
    const std::string tokens = ScratchDir() + "/tokens.txt";
    ASSERT_TRUE(WriteTextFile(
        tokens, absl::StrCat("# ops test tokens\n", kToken, "\nsecond-token-abcdefghijklmnop\n")));
    probe_port_ = FreeLoopbackPort();
    auto server = ServerProcess::Start(
        {"--tls_cert=" + certificates_.server_cert, "--tls_key=" + certificates_.server_key,
         "--token_file=" + tokens, absl::StrCat("--health_listen=127.0.0.1:", probe_port_)});
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  client::ChannelSecurity Tls() const {
    client::ChannelSecurity security;
    security.tls_ca_path = certificates_.ca;
    return security;
  }

  static inline std::unique_ptr<ServerProcess> server_;
  static inline Certificates certificates_;
  static inline int probe_port_ = 0;
};

TEST_F(OpsTls, TlsClientWithTokenSucceeds) {
  auto stub = Stub(server_->address(), Tls());
  const grpc::Status status = StreamClip(stub.get(), /*realtime=*/false, Bearer(kToken));
  std::cout << "TLS + token: " << status.error_code() << " " << status.error_message() << "\n";
  EXPECT_TRUE(status.ok()) << status.error_message();
  grpc::ClientContext context;
  context.AddMetadata("authorization", std::string("Bearer ") + kToken);
  v1::Capabilities capabilities;
  ASSERT_TRUE(stub->GetCapabilities(&context, {}, &capabilities).ok());
  EXPECT_TRUE(capabilities.auth_required());
}

// speechllm-loadtest is a client like the others: over TLS with a token (from a file, out of sight
// of ps) its stream succeeds, with a wrong token it is counted as UNAUTHENTICATED and the verdict
// fails (exit 1).
TEST_F(OpsTls, LoadtestOverTlsWithAToken) {
  auto run = [&](const std::string& token_flag) {
    return RunProcess({SPEECHLLM_OPS_LOADTEST_BIN, "--server=" + server_->address(),
                       "--wav=" + ClipPath(), "--streams=1", "--duration_s=2", "--stagger_ms=0",
                       "--tls_ca=" + certificates_.ca, token_flag});
  };
  const std::string token_file = ScratchDir() + "/client_token.txt";
  ASSERT_TRUE(
      WriteTextFile(token_file, absl::StrCat("# as the server reads it\n\n", kToken, "\n")));
  const ProcessResult good = run("--token_file=" + token_file);
  std::cout << "speechllm-loadtest over TLS: " << good.out;
  EXPECT_EQ(good.exit_code, 0) << good.out << good.err;
  EXPECT_NE(good.out.find("\"failed_streams\": 0"), std::string::npos) << good.out;
  const ProcessResult missing = run("--token_file=" + ScratchDir() + "/no_such_token_file");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.err.find("cannot be read"), std::string::npos) << missing.err;
  const ProcessResult bad = run("--token=wrong-token-abcdefghijklmnop");
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_NE(bad.out.find("\"UNAUTHENTICATED\": 1"), std::string::npos) << bad.out;
}

TEST_F(OpsTls, PlaintextClientFails) {
  auto stub = Stub(server_->address(), client::ChannelSecurity{});
  const grpc::Status status = StreamClip(stub.get(), false, Bearer(kToken));
  std::cout << "plaintext client: code " << status.error_code() << " \"" << status.error_message()
            << "\"\n";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(OpsTls, MissingOrWrongTokenIsUnauthenticatedBeforeAnyState) {
  auto before = Scrape(server_->metrics_port());
  ASSERT_TRUE(before.ok()) << before.status();
  auto stub = Stub(server_->address(), Tls());
  const grpc::Status missing = StreamClip(stub.get(), false);
  const grpc::Status wrong = StreamClip(stub.get(), false, Bearer("not-the-token-0123456789"));
  const grpc::Status basic = StreamClip(stub.get(), false, {{"authorization", kToken}});
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer wrong-token-for-recognize-0000");
  v1::RecognizeResponse response;
  const grpc::Status recognize = stub->Recognize(&context, {}, &response);
  std::cout << "no token: " << missing.error_code() << " \"" << missing.error_message()
            << "\"; wrong token: " << wrong.error_code() << " \"" << wrong.error_message()
            << "\"; no Bearer scheme: " << basic.error_code()
            << "; Recognize, wrong token: " << recognize.error_code() << "\n";
  EXPECT_EQ(missing.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(missing.error_message(), HasSubstr("TOKEN_MISSING"));
  EXPECT_EQ(wrong.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(wrong.error_message(), HasSubstr("TOKEN_INVALID"));
  EXPECT_EQ(basic.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(recognize.error_code(), grpc::StatusCode::UNAUTHENTICATED);

  auto after = Scrape(server_->metrics_port());
  ASSERT_TRUE(after.ok()) << after.status();
  const std::string missing_series = R"(speechllm_auth_failures_total{reason="token_missing"})";
  const std::string invalid_series = R"(speechllm_auth_failures_total{reason="token_invalid"})";
  std::cout << "auth failures: missing " << Value(*before, missing_series) << " -> "
            << Value(*after, missing_series) << ", invalid " << Value(*before, invalid_series)
            << " -> " << Value(*after, invalid_series) << "\n";
  EXPECT_EQ(Value(*after, missing_series) - Value(*before, missing_series), 1);
  EXPECT_EQ(Value(*after, invalid_series) - Value(*before, invalid_series), 3);
  // No handler ran: nothing was admitted, counted or given to the engine.
  double calls_before = 0, calls_after = 0;
  for (const auto& [series, value] : *before) {
    if (series.rfind("speechllm_requests_total", 0) == 0) calls_before += value;
  }
  for (const auto& [series, value] : *after) {
    if (series.rfind("speechllm_requests_total", 0) == 0) calls_after += value;
  }
  EXPECT_EQ(calls_after, calls_before);
  EXPECT_EQ(Value(*after, "speechllm_audio_seconds_total"),
            Value(*before, "speechllm_audio_seconds_total"));
  EXPECT_EQ(Value(*after, "speechllm_engine_steps_total"),
            Value(*before, "speechllm_engine_steps_total"));
  EXPECT_EQ(Value(*after, "speechllm_streams_active"), 0);
}

// The certificate is read once at start: its notAfter is a gauge the rules watch (made for 2 days).
TEST_F(OpsTls, TheCertificatesExpiryIsAMetric) {
  auto samples = Scrape(server_->metrics_port());
  ASSERT_TRUE(samples.ok()) << samples.status();
  const double not_after = Value(*samples, "speechllm_tls_certificate_expiry_timestamp_seconds");
  const double now = absl::ToDoubleSeconds(absl::Now() - absl::UnixEpoch());
  std::cout << "certificate expires in " << (not_after - now) / 3600 << " h\n";
  EXPECT_GT(not_after, now + 47 * 3600);
  EXPECT_LT(not_after, now + 49 * 3600);
}

TEST_F(OpsTls, HealthIsOpenReflectionNeedsTheToken) {
  auto channel = client::CreateClientChannel(server_->address(), Tls());
  ASSERT_TRUE(channel.ok());
  bool serving = false;
  const grpc::Status health = HealthCheck(*channel, &serving);
  EXPECT_TRUE(health.ok()) << health.error_message();
  EXPECT_TRUE(serving);
  const grpc::Status reflection =
      GenericCall(*channel, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
  EXPECT_EQ(reflection.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  // The plaintext probe port answers health only.
  auto probe = grpc::CreateChannel(absl::StrCat("127.0.0.1:", probe_port_),
                                   grpc::InsecureChannelCredentials());
  bool probe_serving = false;
  const grpc::Status probe_health = HealthCheck(probe, &probe_serving);
  EXPECT_TRUE(probe_health.ok()) << probe_health.error_message();
  EXPECT_TRUE(probe_serving);
  // Nor reflection: the schema was served there in plaintext, without a token (the reflection
  // library adds its plugin to every builder).
  const grpc::Status probe_reflection =
      GenericCall(probe, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
  EXPECT_EQ(probe_reflection.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  auto probe_stub = v1::StreamingSpeech::NewStub(probe);
  const grpc::Status probe_stream = StreamClip(probe_stub.get(), false, Bearer(kToken));
  std::cout << "health over TLS without token: " << health.error_code() << " serving " << serving
            << "; reflection without token: " << reflection.error_code()
            << "; probe port health: " << probe_health.error_code() << " serving " << probe_serving
            << "; StreamingRecognize on the probe port: " << probe_stream.error_code() << "\n";
  EXPECT_EQ(probe_stream.error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

class OpsMutualTls : public OpsTls {
 protected:
  static void TearDownTestSuite() {
    if (mtls_server_ != nullptr) {
      EXPECT_EQ(mtls_server_->Stop(), 0) << mtls_server_->Log();
    }
    mtls_server_.reset();
  }
  void SetUp() override {
    if (mtls_server_ != nullptr) return;
    auto certificates = MakeCertificates();
    ASSERT_TRUE(certificates.ok()) << certificates.status();
    certificates_ = *certificates;
    auto server = ServerProcess::Start({"--tls_cert=" + certificates_.server_cert,
                                        "--tls_key=" + certificates_.server_key,
                                        "--tls_client_ca=" + certificates_.ca});
    ASSERT_TRUE(server.ok()) << server.status();
    mtls_server_ = *std::move(server);
  }
  static inline std::unique_ptr<ServerProcess> mtls_server_;
};

// A key that does not belong to the certificate, or a key file OpenSSL cannot read, stops the
// server at start naming the file (gRPC only logged "Invalid private key" and the server said
// it could not listen on its address).
TEST(OpsTlsStart, AKeyOfAnotherCertificateIsRefusedNamingTheFile) {
  auto certificates = MakeCertificates();
  ASSERT_TRUE(certificates.ok()) << certificates.status();
  const std::string garbage = ScratchDir() + "/pki-garbage.key";
  ASSERT_TRUE(WriteTextFile(garbage, "-----BEGIN PRIVATE KEY-----\nnot base64\n"));
  // An encrypted key: OpenSSL's default callback asked for its pass phrase on the terminal (a
  // server under `docker run -it` waited there forever).
  const std::string encrypted = ScratchDir() + "/pki-encrypted.key";
  auto openssl = RequireTool("openssl", "openssl");
  ASSERT_TRUE(openssl.ok()) << openssl.status();
  ASSERT_TRUE(OpenSsl(*openssl, {"pkey", "-in", certificates->server_key, "-aes256", "-passout",
                                 "pass:secret", "-out", encrypted})
                  .ok());
  for (const auto& [key, message] :
       {std::make_pair(certificates->client_key,
                       certificates->client_key + " is not the private key of the certificate in " +
                           certificates->server_cert),
        std::make_pair(garbage, garbage + " holds no readable (unencrypted) private key"),
        std::make_pair(encrypted, encrypted + " holds no readable (unencrypted) private key")}) {
    auto server =
        ServerProcess::Start({"--tls_cert=" + certificates->server_cert, "--tls_key=" + key});
    ASSERT_FALSE(server.ok());
    std::printf("%s\n", std::string(server.status().message()).substr(0, 400).c_str());
    EXPECT_NE(server.status().message().find(message), std::string::npos) << server.status();
    EXPECT_EQ(server.status().message().find("pass phrase"), std::string::npos) << server.status();
  }
  // A client CA file holding no certificate (a key, here): gRPC only logged "Could not load any
  // root certificate" after model load and warm-up, and the server said it could not listen.
  auto server = ServerProcess::Start({"--tls_cert=" + certificates->server_cert,
                                      "--tls_key=" + certificates->server_key,
                                      "--tls_client_ca=" + certificates->server_key});
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()),
              HasSubstr(certificates->server_key + " holds no readable certificate"));
  EXPECT_THAT(std::string(server.status().message()), Not(HasSubstr("warm-up")));
}

TEST_F(OpsMutualTls, ClientWithCertificateSucceeds) {
  client::ChannelSecurity security = Tls();
  security.tls_cert_path = certificates_.client_cert;
  security.tls_key_path = certificates_.client_key;
  auto stub = Stub(mtls_server_->address(), security);
  const grpc::Status status = StreamClip(stub.get(), false);
  std::cout << "mTLS with a client certificate: " << status.error_code() << "\n";
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_F(OpsMutualTls, LoadtestWithAClientCertificate) {
  const ProcessResult run = RunProcess(
      {SPEECHLLM_OPS_LOADTEST_BIN, "--server=" + mtls_server_->address(), "--wav=" + ClipPath(),
       "--streams=1", "--duration_s=2", "--stagger_ms=0", "--tls_ca=" + certificates_.ca,
       "--tls_cert=" + certificates_.client_cert, "--tls_key=" + certificates_.client_key});
  std::cout << "speechllm-loadtest over mutual TLS: " << run.out;
  EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_NE(run.out.find("\"failed_streams\": 0"), std::string::npos) << run.out;
}

TEST_F(OpsMutualTls, ClientWithoutCertificateIsRejected) {
  auto stub = Stub(mtls_server_->address(), Tls());
  const grpc::Status status = StreamClip(stub.get(), false);
  client::ChannelSecurity rogue = Tls();
  rogue.tls_cert_path = certificates_.rogue_cert;
  rogue.tls_key_path = certificates_.rogue_key;
  auto rogue_stub = Stub(mtls_server_->address(), rogue);
  const grpc::Status rogue_status = StreamClip(rogue_stub.get(), false);
  std::cout << "mTLS without a client certificate: code " << status.error_code() << " \""
            << status.error_message() << "\"; with another CA's certificate: code "
            << rogue_status.error_code() << "\n";
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(rogue_status.error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace speechllm::opstest
