// ParseProgramFlags (engine/io/program_flags.h), the flag convention every speechllm program shares:
// dashes in a flag's name read as underscores, while values and positional arguments keep theirs.
// It was written three times (server, client, tools/bench) with different rules; the server's and
// the client's rewrote arguments after a bare `--` too.
#include "engine/io/program_flags.h"

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "gtest/gtest.h"

ABSL_FLAG(int, test_chunk_ms, 0, "a flag for this test");
ABSL_FLAG(std::string, test_tls_ca, "", "a flag for this test");

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
  std::vector<std::string> args = {"prog", "--test-chunk-ms=250", "--test_tls_ca", "ca-1.pem",
                                   "clip.wav", "--", "--x-y"};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  const std::vector<char*> positional =
      ParseProgramFlags(static_cast<int>(argv.size()), argv.data());
  EXPECT_EQ(absl::GetFlag(FLAGS_test_chunk_ms), 250);
  EXPECT_EQ(absl::GetFlag(FLAGS_test_tls_ca), "ca-1.pem");
  std::vector<std::string> positional_text(positional.begin(), positional.end());
  EXPECT_EQ(positional_text, (std::vector<std::string>{"prog", "clip.wav", "--x-y"}));
}

}  // namespace
}  // namespace speechllm::engine
