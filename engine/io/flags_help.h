// ShowProjectFlagsInHelp: makes `--help` list a program's own flags. Abseil's default lists only
// flags defined in a file named after the program (speechllm-server.cc and the like), which none of
// ours is, so every binary printed "No flags matched". Header-only, for every main() (server,
// client, tools); called once before absl::ParseCommandLine, on the main thread.
#ifndef SPEECHLLM_ENGINE_IO_FLAGS_HELP_H_
#define SPEECHLLM_ENGINE_IO_FLAGS_HELP_H_

#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace speechllm::engine {

// `--help` and `--helpshort` show every flag not defined inside Abseil itself.
inline void ShowProjectFlagsInHelp() {
  absl::FlagsUsageConfig config;
  config.contains_helpshort_flags = [](absl::string_view file) {
    return !absl::StrContains(file, "absl/");
  };
  config.contains_help_flags = config.contains_helpshort_flags;
  absl::SetFlagsUsageConfig(config);
}

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_IO_FLAGS_HELP_H_
