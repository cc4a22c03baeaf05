// Lets the benchmark programs accept flag names written with dashes (--random-weights) as well as
// Abseil's underscores (--random_weights), since both spellings appear in issues and scripts.
// Called once from main() before absl::ParseCommandLine; main thread only.
#ifndef SPEECHLLM_TOOLS_BENCH_DASHED_FLAGS_H_
#define SPEECHLLM_TOOLS_BENCH_DASHED_FLAGS_H_

#include <cstring>

namespace speechllm::bench {

// Rewrites, in place, every "-" of a flag's name (the part of "--name=value" before "=") to "_".
inline void AcceptDashedFlagNames(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    char* arg = argv[i];
    if (std::strcmp(arg, "--") == 0) break;  // the rest are positional arguments
    if (std::strncmp(arg, "--", 2) != 0) continue;
    for (char* c = arg + 2; *c != '\0' && *c != '='; ++c) {
      if (*c == '-') *c = '_';
    }
  }
}

}  // namespace speechllm::bench

#endif  // SPEECHLLM_TOOLS_BENCH_DASHED_FLAGS_H_
