#include "engine/repetition_guard.h"

#include "absl/strings/str_cat.h"

namespace speechllm::engine {

absl::Status RepetitionGuardConfig::Validate() const {
  if (min_loop_tokens < 0 || min_loop_tokens > 4096) {
    return absl::InvalidArgumentError(absl::StrCat(
        "repetition guard: min_loop_tokens must be in [0, 4096], got ", min_loop_tokens));
  }
  if (min_copies < 2 || min_copies > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("repetition guard: min_copies must be in [2, 1000], got ", min_copies));
  }
  if (max_unit_tokens < 1 || max_unit_tokens > 1024) {
    return absl::InvalidArgumentError(absl::StrCat(
        "repetition guard: max_unit_tokens must be in [1, 1024], got ", max_unit_tokens));
  }
  return absl::OkStatus();
}

std::string RepetitionGuardConfig::ToString() const {
  return absl::StrCat("RepetitionGuard(min_loop_tokens=", min_loop_tokens,
                      ", min_copies=", min_copies, ", max_unit_tokens=", max_unit_tokens, ")");
}

std::optional<int64_t> FindLoopCut(absl::Span<const int64_t> tokens,
                                   const RepetitionGuardConfig& config) {
  if (!config.enabled()) return std::nullopt;
  const int64_t size = static_cast<int64_t>(tokens.size());
  for (int64_t unit = 1; unit <= config.max_unit_tokens && unit * config.min_copies <= size;
       ++unit) {
    // Tokens at the end that equal the token `unit` positions earlier: the copies after the first,
    // the last of them possibly partial.
    int64_t repeated = 0;
    while (repeated + unit < size &&
           tokens[size - 1 - repeated] == tokens[size - 1 - repeated - unit])
      ++repeated;
    const int64_t copies = 1 + repeated / unit;
    if (copies >= config.min_copies && copies * unit >= config.min_loop_tokens) {
      return size - repeated;
    }
  }
  return std::nullopt;
}

}  // namespace speechllm::engine
