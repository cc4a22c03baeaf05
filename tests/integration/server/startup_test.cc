// The server's start-up refusals and the client's error report (label integration): a port file
// that cannot be written and a raw prompt given half are clear errors with exit code 1 (an
// unwritable port file aborted the server before); the CLI client prints an error's google.rpc
// details as JSON (their types were not linked into it, so it printed raw bytes).
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/server/harness.h"

namespace speechllm::itest {
namespace {

std::vector<std::string> ServerArgs(std::vector<std::string> extra) {
  std::vector<std::string> args = {SPEECHLLM_TEST_SERVER_BIN,
                                   "--model=" + SourcePath("models/qwen2-audio-tiny"),
                                   "--listen=127.0.0.1:0"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// `--help` lists each program's own flags; Abseil's default lists only flags from a file named
// after the program, and all of them printed "No flags matched" (speechllm-bench also warned that
// it had no usage message).
TEST(ProgramHelpTest, HelpListsEachProgramsOwnFlags) {
  for (const auto& [binary, flag] : std::vector<std::pair<std::string, std::string>>{
           {SPEECHLLM_TEST_SERVER_BIN, "--listen ("},
           {SPEECHLLM_TEST_CLIENT_BIN, "--server ("},
           {SPEECHLLM_TEST_LOADTEST_BIN, "--streams ("},
           {SPEECHLLM_TEST_TRANSCRIBE_BIN, "--manifest ("},
#ifdef SPEECHLLM_TEST_BENCH_BIN
           {SPEECHLLM_TEST_BENCH_BIN, "--random_weights ("},
#endif
       }) {
    const ProcessResult run = RunProcess({binary, "--help"}, "/dev/null", absl::Seconds(30));
    const std::string output = run.out + run.err;
    EXPECT_NE(output.find(flag), std::string::npos) << binary << ":\n" << output;
    EXPECT_EQ(output.find("No flags matched"), std::string::npos) << binary;
    EXPECT_EQ(output.find("SetProgramUsageMessage() never called"), std::string::npos) << binary;
  }
}

// An unwritable --out is found before the first clip, not after a whole test set: the manifest's
// clip does not exist, so a transcriber that starts with the clips fails on it instead.
TEST(ProgramStartTest, TranscribeRefusesAnUnwritableOutBeforeAnyClip) {
  const std::string manifest = ScratchDir() + "/manifest.tsv";
  ASSERT_TRUE(WriteFile(manifest, "no_such_clip\tsome text\n"));
  const ProcessResult run =
      RunProcess({SPEECHLLM_TEST_TRANSCRIBE_BIN, "--model=" + SourcePath("models/qwen2-audio-tiny"),
                  "--prompt_ids=1,2,3,501,500,502,10,11,12", "--manifest=" + manifest,
                  "--wav_dir=" + ScratchDir(), "--out=" + ScratchDir() + "/no/such/dir/out.tsv"},
                 "/dev/null", absl::Seconds(60));
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_NE(run.err.find("cannot write --out"), std::string::npos) << run.err;
}

#ifdef SPEECHLLM_TEST_BENCH_BIN  // not in sanitizer builds
// speechllm-bench --streams 0 printed -nan into its JSON and exited 0, --streams -1 aborted, and
// --chunk_ms 100 failed deep in the engine ("malformed encoder chunk").
TEST(ProgramStartTest, BenchRefusesImpossibleNumbersUpFront) {
  for (const auto& [flag, message] : std::vector<std::pair<std::string, std::string>>{
           {"--streams=0", "--streams must be at least 1"},
           {"--streams=-1", "--streams must be at least 1"},
           {"--chunk_ms=100", "--chunk_ms must be a positive multiple of 40"}}) {
    const ProcessResult run = RunProcess({SPEECHLLM_TEST_BENCH_BIN, "--random_weights", flag},
                                         "/dev/null", absl::Seconds(60));
    EXPECT_EQ(run.exit_code, 1) << flag << ": " << run.out << run.err;
    EXPECT_NE(run.err.find(message), std::string::npos) << flag << ": " << run.err;
    EXPECT_EQ(run.out.find("nan"), std::string::npos) << run.out;
  }
}
#endif  // SPEECHLLM_TEST_BENCH_BIN

// speechllm-loadtest judged NaN targets "met", ran zero-audio streams for --duration_s nan and
// took negative staggers and connection counts; speechllm-wer scored an empty reference 0 % and
// let a repeated id replace the first. Each is refused with exit code 2 before anything runs.
TEST(ProgramStartTest, MeasurementToolsRefuseWhatCannotBeMeasured) {
  const std::string clip = ClipPath("clip_a");
  for (const auto& [flag, message] : std::vector<std::pair<std::string, std::string>>{
           {"--lag_p99_s=nan", "--lag_p99_s must be a number >= 0"},
           {"--final_processing_p95_ms=-5", "--final_processing_p95_ms must be a number >= 0"},
           {"--duration_s=nan", "--duration_s must be in [0.1, 86400]"},
           {"--stagger_ms=-100", "--stagger_ms must not be negative"},
           {"--connections=-3", "--connections must not be negative"}}) {
    const ProcessResult run =
        RunProcess({SPEECHLLM_TEST_LOADTEST_BIN, "--server=127.0.0.1:1", "--wav=" + clip, flag},
                   "/dev/null", absl::Seconds(30));
    EXPECT_EQ(run.exit_code, 2) << flag << ": " << run.out << run.err;
    EXPECT_NE(run.err.find(message), std::string::npos) << flag << ": " << run.err;
  }
  const std::string empty = ScratchDir() + "/empty.tsv", twice = ScratchDir() + "/twice.tsv";
  ASSERT_TRUE(WriteFile(empty, ""));
  ASSERT_TRUE(WriteFile(twice, "a\thello\na\tworld\n"));
  for (const auto& [ref, message] : std::vector<std::pair<std::string, std::string>>{
           {empty, "--ref holds no utterance"}, {twice, "--ref names \"a\" twice"}}) {
    const ProcessResult run = RunProcess({SPEECHLLM_TEST_WER_BIN, "--ref=" + ref, "--hyp=" + empty},
                                         "/dev/null", absl::Seconds(30));
    EXPECT_EQ(run.exit_code, 2) << run.out << run.err;
    EXPECT_NE(run.err.find(message), std::string::npos) << run.err;
  }
}

TEST(ServerStartTest, AnUnwritablePortFileIsAClearError) {
  for (const char* flag : {"--port_file", "--metrics_port_file"}) {
    std::vector<std::string> extra = {std::string(flag) + "=" + ScratchDir() + "/no/such/dir/port"};
    if (std::string(flag) == "--metrics_port_file") extra.push_back("--metrics_listen=127.0.0.1:0");
    const ProcessResult run = RunProcess(ServerArgs(extra), "/dev/null", absl::Seconds(60));
    std::printf("%s -> exit %d: %s", flag, run.exit_code,
                run.err.substr(run.err.rfind("speechllm-server:")).c_str());
    EXPECT_EQ(run.exit_code, 1) << run.err;
    EXPECT_NE(run.err.find("cannot write " + ScratchDir() + "/no/such/dir/port"), std::string::npos)
        << run.err;
  }
}

// The server started with `flags` exits 1 at start, saying `message` on stderr.
void ExpectRefusedAtStart(const std::vector<std::string>& flags, const std::string& message) {
  const ProcessResult run = RunProcess(ServerArgs(flags), "/dev/null", absl::Seconds(60));
  EXPECT_EQ(run.exit_code, 1) << run.err;
  EXPECT_NE(run.err.find(message), std::string::npos) << run.err;
}

// A model that loads but cannot run (float16 on the CPU: libtorch has no half-precision GEMM
// there) stops the server at its warm-up, before any port opens; it used to report SERVING and
// fail every call with INTERNAL.
TEST(ServerStartTest, AModelThatCannotRunFailsTheWarmUp) {
  ExpectRefusedAtStart({"--device=cpu", "--dtype=float16"}, "warm-up: model step failed");
}

// A step that runs past the model's positions fails every stream in it (a reviewer saw a 3.4 s
// stream fail with INTERNAL beside a 20 s one decoding 4000 tokens): the tiny model has 4096
// positions, and a 39-token prefix, 30 s of audio, 512 prompt tokens and 4000 new ones do not fit.
TEST(ServerStartTest, StreamsThatCouldPassTheModelsPositionsAreRefusedAtStart) {
  ExpectRefusedAtStart({"--max_new_tokens=4000"},
                       "may need 5301 positions (39 prefix, 750 audio, 512 prompt after it, 4000 "
                       "new tokens); the model has 4096 (max_position_embeddings): lower "
                       "--max_new_tokens or --max_prompt_suffix_tokens");
}

// Memory budgets that cannot hold anything stop the server at start (a negative size used to be a
// shift of a negative number, undefined behaviour).
TEST(ServerStartTest, MemoryBudgetsThatHoldNothingAreRefused) {
  ExpectRefusedAtStart({"--kv_cache_mb=0"}, "--kv_cache_mb must be positive");
  ExpectRefusedAtStart({"--encoder_kv_cache_mb=-1"},
                       "--encoder_kv_cache_mb must be >= 0 (0: automatic)");
}

// Address typos and impossible limits are found before the model loads (they exited 1 only after
// loading and warm-up, with gRPC's "cannot listen on 8081"); --max_streams 2e9 overflowed.
TEST(ServerStartTest, BadAddressesAndLimitsAreRefusedBeforeTheModelLoads) {
  for (const auto& [flags, message] : std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"--metrics_listen=9464"}, "metrics_listen: "},
           {{"--health_listen=8081"}, "health_listen: "},
           {{"--listen=50051"}, "listen: "},
           {{"--metrics_listen=127.0.0.1:47999", "--health_listen=127.0.0.1:47999"},
            "metrics_listen (127.0.0.1:47999) takes the port of 127.0.0.1:47999"},
           {{"--max_streams=2000000000"}, "max_streams must be in [1, 100000]"},
       }) {
    const ProcessResult run = RunProcess(ServerArgs(flags), "/dev/null", absl::Seconds(60));
    std::printf("%s -> exit %d: %s", flags.front().c_str(), run.exit_code,
                run.err.substr(run.err.rfind("speechllm-server:")).c_str());
    EXPECT_EQ(run.exit_code, 1) << run.err;
    EXPECT_NE(run.err.find(message), std::string::npos) << run.err;
    EXPECT_EQ(run.err.find("warm-up"), std::string::npos) << run.err;
  }
}

// gRPC sets SO_REUSEPORT by default: a second server on a taken port started and took about
// half of the first one's calls, and --health_listen=localhost:P beside --listen=127.0.0.1:P
// split one port between two servers. The taken port is found before the model loads (it was
// found after the load and warm-up: minutes for a large checkpoint).
TEST(ServerStartTest, ATakenPortIsAnErrorNotShared) {
  auto first = ServerProcess::Start({});
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string port = std::to_string((*first)->port());
  for (const std::string& flag :
       {"--listen=127.0.0.1:" + port, "--health_listen=localhost:" + port}) {
    const ProcessResult run = RunProcess(ServerArgs({flag}), "/dev/null", absl::Seconds(60));
    std::printf("%s beside a server: exit %d: %s", flag.c_str(), run.exit_code, run.err.c_str());
    EXPECT_EQ(run.exit_code, 1) << run.err;
    EXPECT_NE(run.err.find("cannot listen on " + flag.substr(flag.find('=') + 1)),
              std::string::npos)
        << run.err;
    EXPECT_EQ(run.err.find("warm-up"), std::string::npos) << "found after the model load";
  }
  EXPECT_EQ((*first)->Stop(), 0) << (*first)->Log();
}

TEST(ServerStartTest, RawPromptIdsComeInPairs) {
  ExpectRefusedAtStart({"--prompt_prefix_ids=1,501"},
                       "--prompt_prefix_ids and --prompt_suffix_ids go together");
}

TEST(ServerStartTest, RawPromptIdsOutsideTheVocabularyAreRefused) {
  ExpectRefusedAtStart({"--prompt_prefix_ids=1,501", "--prompt_suffix_ids=502,10,11,99999"},
                       "prompt token id 99999 is outside the vocabulary of ");
}

// The audio goes between prefix and suffix: a raw prompt holding the placeholder id (500 in the
// tiny model) would be taken for text by the engine, so the server refuses it at start.
TEST(ServerStartTest, RawPromptIdsHoldingTheAudioPlaceholderAreRefused) {
  ExpectRefusedAtStart({"--prompt_prefix_ids=1,501,500", "--prompt_suffix_ids=502,10,11,12"},
                       "prompt token id 500 is the audio placeholder");
}

class ClientReportTest : public SharedServerTest<ClientReportTest> {};

TEST_F(ClientReportTest, TheClientPrintsErrorDetailsAsJson) {
  const std::string odd = ScratchDir() + "/odd.raw";
  WriteFile(odd, "abc");  // one 16-bit sample and a byte: too little audio for a token
  const ProcessResult run =
      RunProcess({SPEECHLLM_TEST_CLIENT_BIN, "--server=" + server_->address(), "--stdin_pcm=16000"},
                 odd, absl::Seconds(60));
  const std::string all = run.out + run.err;
  const size_t status_at = all.find("status:");
  std::printf("exit %d, %s\n", run.exit_code,
              status_at == std::string::npos ? all.c_str() : all.substr(status_at).c_str());
  EXPECT_EQ(run.exit_code, 10 + 3) << all;  // INVALID_ARGUMENT
  EXPECT_NE(
      all.find(R"("@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"AUDIO_TOO_SHORT")"),
      std::string::npos)
      << all;
  EXPECT_EQ(all.find("not found"), std::string::npos) << all;
}

}  // namespace
}  // namespace speechllm::itest
