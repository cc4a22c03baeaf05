// ParseProgramFlags (engine/io/program_flags.h), the flag convention every speechllm program
// shares: dashes in a flag's name read as underscores, while values and positional arguments keep
// theirs (it was written three times with different rules; two rewrote arguments after a bare
// `--`), and a bad flag exits 2 as the programs document (Abseil exited 1, the load test's "target
// missed").
#include "engine/io/program_flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "gtest/gtest.h"

ABSL_FLAG(int, test_chunk_ms, 0, "a flag for this test");
ABSL_FLAG(std::string, test_tls_ca, "", "a flag for this test");
ABSL_FLAG(bool, test_fast, false, "a flag for this test");

namespace speechllm::engine {
namespace {

// argv as main() gets it: writable, and the rewrite happens in place.
std::vector<std::string> Rewritten(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  AcceptDashedFlagNames(static_cast<int>(argv.size()), argv.data());
  std::vector<std::string> out;
  for (char* arg : argv) out.emplace_back(arg);
  return out;
}

TEST(ProgramFlagsTest, OnlyTheNamesOfDoubleDashFlagsChange) {
  EXPECT_EQ(Rewritten({"prog-name", "--max-new-tokens=5", "--tls-ca", "a-b.pem",
                       "--context-prompt=x-y --z", "-v-x", "clip-1.wav"}),
            (std::vector<std::string>{"prog-name", "--max_new_tokens=5", "--tls_ca", "a-b.pem",
                                      "--context_prompt=x-y --z", "-v-x", "clip-1.wav"}));
}

TEST(ProgramFlagsTest, ArgumentsAfterABareDoubleDashArePositional) {
  EXPECT_EQ(Rewritten({"prog", "--chunk-ms=1", "--", "--not-a-flag", "--a-b=c-d"}),
            (std::vector<std::string>{"prog", "--chunk_ms=1", "--", "--not-a-flag", "--a-b=c-d"}));
}

TEST(ProgramFlagsTest, DashedAndUnderscoredSpellingsSetTheSameFlag) {
  std::vector<std::string> args = {
      "prog", "--test-chunk-ms=250", "--test_tls_ca", "ca-1.pem", "clip.wav", "--", "--x-y"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  const std::vector<char*> positional =
      ParseProgramFlags(static_cast<int>(argv.size()), argv.data());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_chunk_ms), 250);
  EXPECT_EQ(absl::GetFlag(FLAGS_test_tls_ca), "ca-1.pem");
  std::vector<std::string> positional_text(positional.begin(), positional.end());
  EXPECT_EQ(positional_text, (std::vector<std::string>{"prog", "clip.wav", "--x-y"}));
}

// ExitOnBadFlags on `args` (argv[0] first), in a child process for the death tests.
void CheckFlags(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  ExitOnBadFlags(static_cast<int>(argv.size()), argv.data());
  std::exit(0);
}

// ParseProgramFlagsOnly on `args`, in a child process for the death tests.
void ParseFlagsOnly(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  ParseProgramFlagsOnly(static_cast<int>(argv.size()), argv.data());
  std::exit(0);
}

// A program of flags only refuses a positional argument: `--json false` set --json and dropped
// "false" without a word.
TEST(ProgramFlagsDeathTest, APositionalArgumentIsAUsageErrorWhereFlagsOnly) {
  using ::testing::ExitedWithCode;
  EXPECT_EXIT(ParseFlagsOnly({"prog", "--test_chunk_ms=1", "false"}), ExitedWithCode(2),
              "unexpected argument 'false'");
  EXPECT_EXIT(ParseFlagsOnly({"prog", "--test_chunk_ms", "2"}), ExitedWithCode(0), "");
}

TEST(ProgramFlagsDeathTest, BadFlagsAreAUsageErrorNamingTheArgument) {
  using ::testing::ExitedWithCode;
  EXPECT_EXIT(CheckFlags({"prog", "--test_chunk_mz=1"}), ExitedWithCode(2),
              "--test_chunk_mz=1: unknown flag");
  EXPECT_EXIT(CheckFlags({"prog", "--test_chunk_ms=abc"}), ExitedWithCode(2),
              "--test_chunk_ms=abc: Illegal value 'abc' specified for flag 'test_chunk_ms'");
  EXPECT_EXIT(CheckFlags({"prog", "--test_chunk_ms", "1.5"}), ExitedWithCode(2),
              "--test_chunk_ms: Illegal value");
  EXPECT_EXIT(CheckFlags({"prog", "--test_tls_ca"}), ExitedWithCode(2), "needs a value");
  EXPECT_EXIT(CheckFlags({"prog", "--notest_chunk_ms"}), ExitedWithCode(2), "unknown flag");
  EXPECT_EXIT(CheckFlags({"prog", "--notest_fast=1"}), ExitedWithCode(2), "takes no value");
  EXPECT_EXIT(CheckFlags({"prog", "--test_fast=maybe"}), ExitedWithCode(2), "Illegal value");
}

TEST(ProgramFlagsDeathTest, GoodFlagsAndPositionalArgumentsPass) {
  EXPECT_EXIT(CheckFlags({"prog", "--test_chunk_ms=5", "-test_chunk_ms", "6", "--test_fast",
                          "--notest_fast", "--test_tls_ca", "--looks-like-a-flag", "clip.wav",
                          "--help=x", "--", "--unknown"}),
              ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace speechllm::engine
