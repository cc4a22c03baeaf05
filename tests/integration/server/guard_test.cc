// The transcript guards of API.md 4.5 through the real server. Repetition: the tiny fixture model
// loops (its greedy output for clip_b is 355 and then 227 for ever); with a 64-token limit and a
// guard of 8 tokens the final stops after the loop's first copy and a REPETITION_SUPPRESSED
// warning comes before it. Silence: with the server's default guard, an utterance of digital
// silence (MANUAL endpointing, so the VAD does not gate it) ends with an empty final after a
// SILENCE_SUPPRESSED warning. With both guards off the model's own output comes through.
#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/integration/server/harness.h"

namespace speechllm::itest {
namespace {

// Index of the first warning with `code`, or -1.
int IndexOfWarning(const std::vector<v1::StreamingRecognizeResponse>& responses,
                   v1::Warning::Code code) {
  for (size_t i = 0; i < responses.size(); ++i) {
    if (responses[i].has_warning() && responses[i].warning().code() == code)
      return static_cast<int>(i);
  }
  return -1;
}
// Index of the first final, or -1.
int IndexOfFinal(const std::vector<v1::StreamingRecognizeResponse>& responses) {
  for (size_t i = 0; i < responses.size(); ++i) {
    if (responses[i].has_transcript() && responses[i].transcript().is_final())
      return static_cast<int>(i);
  }
  return -1;
}

class RepetitionGuardTest : public SharedServerTest<RepetitionGuardTest> {
 public:
  static std::vector<std::string> ServerFlags() {
    return {"--max_new_tokens=64", "--repetition_guard_tokens=8"};
  }
};

TEST_F(RepetitionGuardTest, ALoopIsCutAfterItsFirstCopyWithAWarning) {
  const std::vector<int64_t> golden = GoldenTokens("clip_b");
  ASSERT_GE(golden.size(), 2u);
  ASSERT_EQ(golden[1], golden[2]) << "the fixture's loop this test relies on";
  StreamSpec spec;
  spec.clip = "clip_b";
  const StreamRun run = RunStream(server_->stub(), spec);
  ASSERT_TRUE(run.status.ok()) << Describe(run.status);
  const auto responses = run.responses();
  ExpectWellFormed(responses, "repetition guard");
  EXPECT_EQ(FinalTokenIds(responses), std::vector<int64_t>(golden.begin(), golden.begin() + 2));
  const int warning = IndexOfWarning(responses, v1::Warning::REPETITION_SUPPRESSED);
  const int final_at = IndexOfFinal(responses);
  ASSERT_GE(warning, 0) << "no REPETITION_SUPPRESSED warning";
  EXPECT_LT(warning, final_at) << "the warning precedes the final it explains";
  std::printf("warning: %s\n", responses[warning].warning().message().c_str());
  // Found once 8 copies of the one-token unit span 8 tokens: 7 are cut, and decoding stops there
  // instead of running to 64 tokens.
  EXPECT_NE(responses[warning].warning().message().find("7 repeated tokens"), std::string::npos);
}

TEST_F(RepetitionGuardTest, CommittedTextSurvivesTheCut) {
  // Interim results with local agreement: whatever was committed stays, and the final starts
  // with it.
  StreamSpec spec;
  spec.clip = "clip_a";
  spec.config = ExactConfig(true, v1::ResultOptions::LOCAL_AGREEMENT);
  const StreamRun run = RunStream(server_->stub(), spec);
  ASSERT_TRUE(run.status.ok()) << Describe(run.status);
  ExpectWellFormed(run.responses(), "repetition guard with interim results");
  const std::vector<int64_t> final_ids = FinalTokenIds(run.responses());
  ASSERT_FALSE(final_ids.empty());
  EXPECT_LT(final_ids.size(), 64u) << "the loop ran to the limit";
  size_t same_at_end = 1;
  while (same_at_end < final_ids.size() &&
         final_ids[final_ids.size() - 1 - same_at_end] == final_ids.back())
    ++same_at_end;
  EXPECT_LT(same_at_end, 8u) << "the final still ends in a loop: " << Ids(final_ids);
  std::printf("clip_a final with interim results: %zu tokens (%s)\n", final_ids.size(),
              Ids(final_ids).c_str());
}

std::string SilencePcm(double seconds) {
  return std::string(static_cast<size_t>(seconds * 16000) * 2, '\0');
}

class SilenceGuardTest : public SharedServerTest<SilenceGuardTest> {};  // the server's defaults

TEST_F(SilenceGuardTest, SilenceGivesAnEmptyFinalAfterAWarning) {
  StreamSpec spec;
  spec.pcm = SilencePcm(2.0);
  spec.config = ExactConfig(true, v1::ResultOptions::LOCAL_AGREEMENT);
  const StreamRun run = RunStream(server_->stub(), spec);
  ASSERT_TRUE(run.status.ok()) << Describe(run.status);
  const auto responses = run.responses();
  ExpectWellFormed(responses, "silence guard");
  ASSERT_EQ(CountFinals(responses), 1);
  EXPECT_EQ(CountTranscripts(responses), 1) << "no partials for an utterance without speech";
  EXPECT_TRUE(FinalTokenIds(responses).empty());
  const int warning = IndexOfWarning(responses, v1::Warning::SILENCE_SUPPRESSED);
  ASSERT_GE(warning, 0) << "no SILENCE_SUPPRESSED warning";
  EXPECT_LT(warning, IndexOfFinal(responses));
  std::printf("warning: %s\n", responses[warning].warning().message().c_str());
  // A speech clip on the same server keeps its text.
  StreamSpec speech;
  EXPECT_EQ(FinalTokenIds(RunStream(server_->stub(), speech).responses()), GoldenTokens("clip_a"));
}

TEST_F(SilenceGuardTest, TheClientPrintsTheWarningApartFromTheText) {
  const std::string stdin_path = ScratchDir() + "/silence.pcm";
  ASSERT_TRUE(WriteFile(stdin_path, SilencePcm(2.0)));
  const ProcessResult r = RunProcess({SPEECHLLM_TEST_CLIENT_BIN, "--server=" + server_->address(),
                                      "--stdin_pcm=16000", "--fast", "--endpointing=manual"},
                                     stdin_path, absl::Seconds(60));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning SILENCE_SUPPRESSED: utterance 0"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("SILENCE"), std::string::npos) << "warnings stay out of the transcript";
  EXPECT_NE(r.out.find("final: \n"), std::string::npos) << "an empty final: " << r.out;
}

class GuardsOffTest : public SharedServerTest<GuardsOffTest> {
 public:
  static std::vector<std::string> ServerFlags() {
    return {"--max_new_tokens=64", "--repetition_guard_tokens=0",
            "--silence_guard_min_speech_ms=0"};
  }
};

TEST_F(GuardsOffTest, WithoutTheSilenceGuardTheModelsTextForSilenceComesThrough) {
  StreamSpec spec;
  spec.pcm = SilencePcm(2.0);
  const StreamRun run = RunStream(server_->stub(), spec);
  ASSERT_TRUE(run.status.ok()) << Describe(run.status);
  EXPECT_FALSE(FinalTokenIds(run.responses()).empty());
  EXPECT_EQ(IndexOfWarning(run.responses(), v1::Warning::SILENCE_SUPPRESSED), -1);
}

TEST_F(GuardsOffTest, WithoutTheRepetitionGuardTheLoopRunsToTheLimit) {
  StreamSpec spec;
  spec.clip = "clip_b";
  const StreamRun run = RunStream(server_->stub(), spec);
  ASSERT_TRUE(run.status.ok()) << Describe(run.status);
  const auto responses = run.responses();
  EXPECT_EQ(FinalTokenIds(responses).size(), 64u);
  EXPECT_EQ(IndexOfWarning(responses, v1::Warning::REPETITION_SUPPRESSED), -1);
}

}  // namespace
}  // namespace speechllm::itest
