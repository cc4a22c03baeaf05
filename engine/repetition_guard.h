// RepetitionGuard: finds a decoder loop at the end of a hypothesis, the same run of tokens repeated
// back to back (a known failure of Whisper-style and LLM-based speech recognition: a phrase
// repeated until the token limit; API.md 4.5, REPETITION_SUPPRESSED). Pure functions over token
// ids; the engine loop thread calls them after every decoded token of a sequence whose config
// enables them.
#ifndef SPEECHLLM_ENGINE_REPETITION_GUARD_H_
#define SPEECHLLM_ENGINE_REPETITION_GUARD_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace speechllm::engine {

// A loop is a unit of 1 to max_unit_tokens tokens that ends the hypothesis and occurs at least
// min_copies times back to back, the copies spanning at least min_loop_tokens tokens. Speech can
// repeat a word or two ("no, no, no"), so the span must be long: with the server's default of 32,
// one token repeats 32 times, a 4-token phrase 8 times, an 11-token sentence 3 times.
struct RepetitionGuardConfig {
  int min_loop_tokens = 0;  // 0: the guard is off
  int min_copies = 3;
  int max_unit_tokens = 32;

  bool enabled() const { return min_loop_tokens > 0; }
  // INVALID_ARGUMENT naming the field and its range.
  absl::Status Validate() const;
  std::string ToString() const;
};

// When `tokens` ends with a loop, the length to keep: everything before the loop and its first copy
// (a partial copy at the end goes too). Otherwise nullopt. The shortest unit that forms a loop wins
// (a loop of "a b a b" is one of "a b", not of "a b a b").
std::optional<int64_t> FindLoopCut(absl::Span<const int64_t> tokens,
                                   const RepetitionGuardConfig& config);

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_REPETITION_GUARD_H_
