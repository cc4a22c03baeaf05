// ParseProgramFlags: the one command-line convention of every speechllm program (server, client,
// tools). `--help` lists the program's own flags, dashes in a flag's name read as underscores
// (`--max-new-tokens` is `--max_new_tokens`), and a flag that is unknown or badly valued exits 2, a
// usage error. Header-only; called once at the top of main(), on the main thread, before any other
// thread starts.
#ifndef SPEECHLLM_ENGINE_IO_PROGRAM_FLAGS_H_
#define SPEECHLLM_ENGINE_IO_PROGRAM_FLAGS_H_

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
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

// The exit code of a usage error in every program (Abseil's own parse exits 1, which the load test
// uses for "target missed").
inline constexpr int kBadFlagsExitCode = 2;

// The flags Abseil's parse handles itself (usage and flag files); absl/flags/parse.cc and
// absl/flags/internal/usage.cc define them.
inline bool IsAbseilBuiltInBoolFlag(absl::string_view name) {
  for (absl::string_view builtin :
       {"help", "helpfull", "helpshort", "helppackage", "version", "only_check_args"}) {
    if (name == builtin) return true;
  }
  return false;
}
inline bool IsAbseilBuiltInFlag(absl::string_view name) {
  if (IsAbseilBuiltInBoolFlag(name)) return true;
  for (absl::string_view builtin :
       {"helpon", "helpmatch", "flagfile", "fromenv", "tryfromenv", "undefok"}) {
    if (name == builtin) return true;
  }
  return false;
}

// Checks the flags as Abseil's parse will read them (names already underscored) and exits with
// kBadFlagsExitCode, naming the argument, on an unknown flag, a missing value or a value that does
// not parse. Abseil's built-in flags (--help, --flagfile, ...) are left to it.
inline void ExitOnBadFlags(int argc, char** argv) {
  const auto fail = [argv](absl::string_view argument, const std::string& why) {
    std::fprintf(stderr, "%s: %.*s: %s (--help lists the flags)\n", argv[0],
                 static_cast<int>(argument.size()), argument.data(), why.c_str());
    std::exit(kBadFlagsExitCode);
  };
  for (int i = 1; i < argc; ++i) {
    const absl::string_view argument = argv[i];
    if (argument == "--") break;  // the rest are positional
    if (argument.size() < 2 || argument[0] != '-') continue;
    absl::string_view text = argument.substr(argument[1] == '-' ? 2 : 1);
    const size_t equals = text.find('=');
    const absl::string_view name = text.substr(0, equals);
    if (IsAbseilBuiltInFlag(name)) {  // its value, when separate, is the next argument
      if (equals == absl::string_view::npos && !IsAbseilBuiltInBoolFlag(name)) ++i;
      continue;
    }
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    bool negated = false;  // --noname of a bool flag
    if (flag == nullptr && absl::StartsWith(name, "no")) {
      flag = absl::FindCommandLineFlag(name.substr(2));
      negated = flag != nullptr && flag->IsOfType<bool>();
      if (!negated) flag = nullptr;
    }
    if (flag == nullptr) fail(argument, "unknown flag");
    const bool is_bool = flag->IsOfType<bool>();
    std::string value;
    if (equals != absl::string_view::npos) {
      if (negated) fail(argument, "takes no value");
      value = std::string(text.substr(equals + 1));
    } else if (negated || is_bool) {
      continue;
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      fail(argument, "needs a value");
    }
    std::string error;
    if (!flag->ParseFrom(value, &error)) fail(argument, error);
  }
}

// All of the above, then Abseil's parse (which handles `--help`). Returns the positional arguments,
// argv[0] first.
inline std::vector<char*> ParseProgramFlags(int argc, char** argv) {
  ShowProjectFlagsInHelp();
  AcceptDashedFlagNames(argc, argv);
  ExitOnBadFlags(argc, argv);
  return absl::ParseCommandLine(argc, argv);
}

// ParseProgramFlags for a program that takes flags only: a positional argument is a usage error
// (exit 2). It was ignored, so `--json false` printed JSON (a bool flag's value goes after '=')
// and a second file was dropped without a word.
inline void ParseProgramFlagsOnly(int argc, char** argv) {
  const std::vector<char*> positional = ParseProgramFlags(argc, argv);
  if (positional.size() > 1) {
    std::fprintf(stderr,
                 "%s: unexpected argument '%s' (flags only; a bool flag's value goes after '=', "
                 "as in --json=false)\n",
                 argv[0], positional[1]);
    std::exit(kBadFlagsExitCode);
  }
}

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_IO_PROGRAM_FLAGS_H_
