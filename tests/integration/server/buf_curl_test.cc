// The API is usable without .proto files (issue 4, "Must show" 3): `buf curl` (npm @bufbuild/buf
// 1.75.0, installed into the build tree by the fixture test server_e2e.buf_install, or here if it
// is missing) lists the services through server reflection, calls GetCapabilities and the health
// service, and runs a StreamingRecognize whose JSON messages come from stdin (end of stdin =
// half-close). Outputs are parsed back into the generated messages.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.pb.h"
#include "gtest/gtest.h"
#include "tests/integration/server/harness.h"

namespace speechllm::itest {
namespace {

std::string BufPath() { return std::string(SPEECHLLM_TEST_BUF_PREFIX) + "/node_modules/.bin/buf"; }

class BufCurlTest : public SharedServerTest<BufCurlTest> {
 protected:
  void SetUp() override {
    SharedServerTest::SetUp();
    if (HasFatalFailure()) return;
    // Normally installed by the ctest fixture; a direct run installs it here. Never skipped.
    if (!std::filesystem::exists(BufPath())) {
      const std::string npm = SPEECHLLM_TEST_NPM;
      ASSERT_FALSE(npm.empty()) << "npm was not found at configure time: cannot install buf";
      const ProcessResult r =
          RunProcess({npm, "install", "--no-save", "--no-audit", "--no-fund", "--prefix",
                      SPEECHLLM_TEST_BUF_PREFIX, "@bufbuild/buf@1.75.0"},
                     "/dev/null", absl::Seconds(240));
      ASSERT_TRUE(r.exit_code == 0 && std::filesystem::exists(BufPath()))
          << "npm could not install @bufbuild/buf@1.75.0 into " << SPEECHLLM_TEST_BUF_PREFIX
          << " (exit " << r.exit_code << "); the test needs the npm registry. npm said:\n"
          << r.out << r.err;
    }
  }

  // buf curl --protocol grpc --http2-prior-knowledge ARGS... URL-suffix
  static ProcessResult Curl(std::vector<std::string> args, const std::string& path,
                            const std::string& stdin_path = "/dev/null") {
    std::vector<std::string> argv = {BufPath(), "curl", "--protocol", "grpc",
                                     "--http2-prior-knowledge"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back(absl::StrCat("http://", server_->address(), path));
    ProcessResult r = RunProcess(argv, stdin_path, absl::Seconds(60));
    std::printf("[buf] %s -> exit %d\n", path.empty() ? "--list-services" : path.c_str(),
                r.exit_code);
    return r;
  }
};

// buf prints each message as indented JSON, one after the other: split them at depth 0.
std::vector<std::string> SplitJsonObjects(const std::string& text) {
  std::vector<std::string> objects;
  int depth = 0;
  bool in_string = false, escaped = false;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{') {
      if (depth++ == 0) start = i;
    } else if (c == '}' && --depth == 0) {
      objects.push_back(text.substr(start, i + 1 - start));
    }
  }
  return objects;
}

template <typename Message>
Message ParseJson(const std::string& json) {
  Message message;
  const auto status = google::protobuf::util::JsonStringToMessage(json, &message);
  EXPECT_TRUE(status.ok()) << status.ToString() << " in:\n" << json;
  return message;
}

TEST_F(BufCurlTest, ListServicesThroughReflection) {
  const ProcessResult r = Curl({"--list-services"}, "");
  std::printf("%s", r.out.c_str());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(absl::StrContains(r.out, "speechllm.v1.StreamingSpeech\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "grpc.health.v1.Health\n")) << r.out;
  EXPECT_TRUE(absl::StrContains(r.out, "grpc.reflection.v1alpha.ServerReflection") ||
              absl::StrContains(r.out, "grpc.reflection.v1.ServerReflection"))
      << r.out;
}

// --reflection=false did nothing: libgrpc++_reflection adds its plugin to every ServerBuilder.
TEST_F(BufCurlTest, ReflectionOffServesNoReflection) {
  auto quiet = ServerProcess::Start({"--reflection=false"});
  ASSERT_TRUE(quiet.ok()) << quiet.status();
  const ProcessResult r =
      RunProcess({BufPath(), "curl", "--protocol", "grpc", "--http2-prior-knowledge",
                  "--list-services", absl::StrCat("http://", (*quiet)->address())},
                 "/dev/null", absl::Seconds(60));
  std::printf("[buf] --list-services with --reflection=false -> exit %d: %s%s\n", r.exit_code,
              r.out.c_str(), r.err.substr(0, 300).c_str());
  EXPECT_NE(r.exit_code, 0) << r.out;
  EXPECT_FALSE(absl::StrContains(r.out, "ServerReflection")) << r.out;
  EXPECT_TRUE(absl::StrContains(absl::AsciiStrToLower(r.err), "unimplemented")) << r.err;
  // The API still answers.
  const ProcessResult caps =
      RunProcess({BufPath(), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--schema",
                  std::string(SPEECHLLM_TEST_SOURCE_DIR) + "/proto",
                  absl::StrCat("http://", (*quiet)->address(),
                               "/speechllm.v1.StreamingSpeech/GetCapabilities")},
                 "/dev/null", absl::Seconds(60));
  EXPECT_EQ(caps.exit_code, 0) << caps.err;
  EXPECT_EQ((*quiet)->Stop(), 0) << (*quiet)->Log();
}

TEST_F(BufCurlTest, GetCapabilities) {
  const ProcessResult r = Curl({}, "/speechllm.v1.StreamingSpeech/GetCapabilities");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto objects = SplitJsonObjects(r.out);
  ASSERT_EQ(objects.size(), 1u) << r.out;
  const auto caps = ParseJson<v1::Capabilities>(objects[0]);
  std::printf("[buf] capabilities: %s\n", caps.ShortDebugString().c_str());
  ASSERT_EQ(caps.models_size(), 1);
  EXPECT_EQ(caps.models(0).hidden_size(), 64u);
  EXPECT_EQ(caps.models(0).name(), "qwen2-audio");
}

TEST_F(BufCurlTest, HealthCheck) {
  const ProcessResult r =
      Curl({"-d", R"({"service":"speechllm.v1.StreamingSpeech"})"}, "/grpc.health.v1.Health/Check");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto objects = SplitJsonObjects(r.out);
  ASSERT_EQ(objects.size(), 1u) << r.out;
  const auto response = ParseJson<grpc::health::v1::HealthCheckResponse>(objects[0]);
  std::printf("[buf] health: %s\n", response.ShortDebugString().c_str());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

// A StreamingRecognize with JSON messages on stdin: the config, clip_a's PCM in 100 ms audio
// messages (base64), then end of stdin. The final carries tokenIds equal to the offline output.
TEST_F(BufCurlTest, StreamingRecognizeFromStdin) {
  std::string input = R"({"config":{"audio":{"encoding":"PCM_S16LE","sample_rate_hz":16000},)"
                      R"("results":{"token_ids":true,"commit_policy":"NONE","final_mode":"EXACT"},)"
                      R"("endpointing":{"mode":"MANUAL"}}})"
                      "\n";
  const std::string pcm = ClipPcm("clip_a");
  int messages = 0;
  for (size_t pos = 0; pos < pcm.size(); pos += 3200, ++messages) {
    absl::StrAppend(&input, R"({"audio":{"data":")", absl::Base64Escape(pcm.substr(pos, 3200)),
                    "\"}}\n");
  }
  const std::string stdin_path = ScratchDir() + "/buf-stream.jsonl";
  ASSERT_TRUE(WriteFile(stdin_path, input));
  const ProcessResult r =
      Curl({"-d", "@-"}, "/speechllm.v1.StreamingSpeech/StreamingRecognize", stdin_path);
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  std::vector<v1::StreamingRecognizeResponse> responses;
  for (const std::string& json : SplitJsonObjects(r.out))
    responses.push_back(ParseJson<v1::StreamingRecognizeResponse>(json));
  std::printf("[buf] StreamingRecognize: %d audio messages -> %zu responses, final tokenIds %s\n",
              messages, responses.size(), Ids(FinalTokenIds(responses)).c_str());
  ExpectWellFormed(responses, "buf curl stream");
  ASSERT_FALSE(responses.empty()) << r.out;
  EXPECT_TRUE(responses.back().has_summary()) << "no SessionSummary last";
  EXPECT_EQ(CountFinals(responses), 1);
  EXPECT_EQ(Ids(FinalTokenIds(responses)), Ids(OfflineTokens("clip_a")));
  EXPECT_TRUE(absl::StrContains(r.out, "\"tokenIds\"")) << r.out;
}

}  // namespace
}  // namespace speechllm::itest
