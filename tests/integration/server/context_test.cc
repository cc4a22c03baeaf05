// Recognition context on a server that builds its prompt from the chat template (the tiny model's
// own 512-token tokenizer, no fixed prompt ids): a context within the prompt budget gives a normal
// stream; one whose prompt would pass the suffix the engine reserves KV for is refused when it
// arrives, in the config (INVALID_ARGUMENT, BAD_CONFIG, field context) or in a Control.context
// mid-stream, never later at an utterance start; either way the server keeps serving. A lower
// --max_prompt_suffix_tokens reserves less KV per stream and refuses longer contexts the same way;
// one below the template's own suffix stops the server at start.
#include <cstdio>
#include <string>

#include "gtest/gtest.h"
#include "tests/integration/server/harness.h"

namespace speechllm::itest {
namespace {

using client::StreamingClient;
using client::StreamingClientOptions;

class ContextTest : public SharedServerTest<ContextTest> {
 public:
  // Empty prompt ids: the server builds the chat template with the model's tokenizer.
  static std::vector<std::string> ServerFlags() {
    return {"--prompt_prefix_ids=", "--prompt_suffix_ids="};
  }
  static v1::SessionConfig WithContext(const std::string& prompt) {
    v1::SessionConfig config = ExactConfig(false, v1::ResultOptions::NONE);
    config.mutable_context()->set_prompt(prompt);
    return config;
  }
  // Text the tiny tokenizer (512 tokens) cuts into many pieces: about one token per character.
  static std::string Varied(size_t chars) {
    std::string text;
    for (size_t i = 0; text.size() < chars; ++i) text += static_cast<char>('!' + (i * 37) % 90);
    return text.substr(0, chars);
  }
};

TEST_F(ContextTest, AShortContextStreamsNormally) {
  StreamSpec spec;
  spec.config = WithContext("a meeting about the budget");
  const StreamRun run = RunStream(server_->stub(), spec);
  std::printf("short context: %s, %d finals\n", Describe(run.status).c_str(),
              CountFinals(run.responses()));
  EXPECT_TRUE(run.status.ok()) << Describe(run.status);
  EXPECT_EQ(CountFinals(run.responses()), 1);
  ExpectWellFormed(run.responses(), "short context");
}

TEST_F(ContextTest, AContextPastTheSuffixBudgetIsRefusedInTheConfig) {
  StreamSpec spec;
  spec.config = WithContext(Varied(1000));  // within max_context_chars, past 512 tokens
  const StreamRun run = RunStream(server_->stub(), spec);
  std::printf("1000-character context: %s after %zu responses\n", Describe(run.status).c_str(),
              run.records.size());
  ExpectError(run.status, grpc::StatusCode::INVALID_ARGUMENT, "BAD_CONFIG");
  EXPECT_TRUE(run.records.empty()) << "the config was accepted: " << run.records.size();
  const StreamRun after = RunStream(server_->stub(), StreamSpec{});
  EXPECT_TRUE(after.status.ok()) << "after a refused context: " << Describe(after.status);
  EXPECT_EQ(CountFinals(after.responses()), 1);
}

TEST_F(ContextTest, AControlContextPastTheSuffixBudgetIsRefusedWhenItArrives) {
  const std::string pcm = ClipPcm("clip_a");
  StreamingClientOptions options;
  options.realtime = false;
  options.config = ExactConfig(false, v1::ResultOptions::NONE);
  StreamingClient client(server_->stub(), options);
  ASSERT_TRUE(client.Start().ok());
  ASSERT_TRUE(client.SendAudio(pcm.substr(0, pcm.size() / 2)).ok());
  v1::StreamingRecognizeRequest request;
  request.mutable_control()->mutable_context()->set_prompt(Varied(1000));
  ASSERT_TRUE(client.SendRaw(request).ok());
  (void)client.SendAudio(pcm.substr(pcm.size() / 2));
  (void)client.CloseSend();
  const StreamRun run = Collect(&client, absl::Seconds(30));
  std::printf("1000-character Control.context mid-stream: %s\n", Describe(run.status).c_str());
  ExpectError(run.status, grpc::StatusCode::INVALID_ARGUMENT, "BAD_CONFIG");
  EXPECT_NE(run.status.error_message().find("control.context"), std::string::npos)
      << run.status.error_message();
}

// An operator whose clients send little context lowers the suffix reservation: more streams fit
// in the same KV cache, and a context past the lower bound is refused the same way.
class SmallSuffixTest : public SharedServerTest<SmallSuffixTest> {
 public:
  static std::vector<std::string> ServerFlags() {
    return {"--prompt_prefix_ids=", "--prompt_suffix_ids=", "--max_prompt_suffix_tokens=64"};
  }
};

TEST_F(SmallSuffixTest, TheLowerBoundAdmitsMoreStreamsAndRefusesLongerContexts) {
  // "KV cache of 512 MiB: B blocks, N reserved per stream, room for M streams": with a 512-token
  // suffix a stream needs at least (750 audio + 512 + 24 new + 1) / 16 = 81 blocks of 16 tokens
  // whatever the prefix; the 64-token bound must have brought it below that.
  const std::string log = server_->Log();
  const size_t at = log.find(" reserved per stream");
  ASSERT_NE(at, std::string::npos) << log;
  const size_t start = log.rfind(' ', at - 1) + 1;
  const int blocks_per_stream = std::stoi(log.substr(start, at - start));
  std::printf("64-token suffix bound: %d blocks reserved per stream\n", blocks_per_stream);
  EXPECT_LT(blocks_per_stream, 81) << log;
  StreamSpec spec;
  spec.config = ContextTest::WithContext("a meeting about the budget");
  EXPECT_TRUE(RunStream(server_->stub(), spec).status.ok());
  spec.config = ContextTest::WithContext(ContextTest::Varied(200));
  const StreamRun run = RunStream(server_->stub(), spec);
  std::printf("200-character context with a 64-token suffix bound: %s\n",
              Describe(run.status).c_str());
  ExpectError(run.status, grpc::StatusCode::INVALID_ARGUMENT, "BAD_CONFIG");
}

TEST(SmallSuffixStartTest, ABoundBelowTheTemplatesOwnSuffixStopsTheServerAtStart) {
  const ProcessResult run =
      RunProcess({SPEECHLLM_TEST_SERVER_BIN, "--model=" + SourcePath("models/qwen2-audio-tiny"),
                  "--listen=127.0.0.1:0",
                  "--prompt_prefix_ids=", "--prompt_suffix_ids=", "--max_prompt_suffix_tokens=2"},
                 "/dev/null", absl::Seconds(60));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_NE(run.err.find("--max_prompt_suffix_tokens"), std::string::npos) << run.err;
}

}  // namespace
}  // namespace speechllm::itest
