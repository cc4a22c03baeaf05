// ParseProgramFlags: the one command-line convention of every speechllm program (server, client,
// tools). `--help` lists the program's own flags, and dashes in a flag's name read as underscores
// (`--max-new-tokens` is `--max_new_tokens`). Header-only; called once at the top of main(), on the
// main thread, before any other thread starts.
#ifndef SPEECHLLM_ENGINE_IO_PROGRAM_FLAGS_H_
#define SPEECHLLM_ENGINE_IO_PROGRAM_FLAGS_H_

#include <cstring>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace speechllm::engine {

// `--help` and `--helpshort` show every flag not defined inside Abseil itself. Abseil's default
// lists only flags defined in a file named after the program (speechllm-server.cc and the like),
// which none of ours is, so every binary printed "No flags matched".
inline void ShowProjectFlagsInHelp() {
  absl::FlagsUsageConfig config;
  config.contains_helpshort_flags = [](absl::string_view file) {
    return !absl::StrContains(file, "absl/");
  };
  config.contains_help_flags = config.contains_helpshort_flags;
  absl::SetFlagsUsageConfig(config);
}

// Rewrites, in place, the dashes in the name part of every `--name[=value]` argument to
// underscores. Values, single-dash arguments and everything after a bare `--` (positional
// arguments by Abseil's rule) are left as they are.
inline void AcceptDashedFlagNames(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* arg = argv[i];
    if (std::strcmp(arg, "--") == 0) break;
    if (std::strncmp(arg, "--", 2) != 0) continue;
    for (char* c = arg + 2; *c != '\0' && *c != '='; ++c) {
      if (*c == '-') *c = '_';
    }
  }
}

// Both of the above, then Abseil's parse (which exits on an unknown flag or `--help`). Returns the
// positional arguments, argv[0] first.
inline std::vector<char*> ParseProgramFlags(int argc, char** argv) {
  ShowProjectFlagsInHelp();
  AcceptDashedFlagNames(argc, argv);
  return absl::ParseCommandLine(argc, argv);
}

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_IO_PROGRAM_FLAGS_H_
