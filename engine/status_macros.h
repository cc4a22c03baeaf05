// Status propagation macros for absl::Status / absl::StatusOr across the code base.
// Debian's Abseil 20220623 has no ABSL_RETURN_IF_ERROR / ABSL_ASSIGN_OR_RETURN, so the project
// defines its own under the SPEECHLLM_ prefix. Header-only; usable from any thread.
#ifndef SPEECHLLM_ENGINE_STATUS_MACROS_H_
#define SPEECHLLM_ENGINE_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define SPEECHLLM_STATUS_CONCAT_INNER_(a, b) a##b
#define SPEECHLLM_STATUS_CONCAT_(a, b) SPEECHLLM_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status) and returns it from the enclosing function if it is not OK.
#define SPEECHLLM_RETURN_IF_ERROR(expr)                    \
  do {                                                     \
    ::absl::Status speechllm_status_ = (expr);             \
    if (!speechllm_status_.ok()) return speechllm_status_; \
  } while (0)

// SPEECHLLM_ASSIGN_OR_RETURN(lhs, rexpr): evaluates `rexpr` (an absl::StatusOr<T>); on error
// returns its status, otherwise move-assigns the value to `lhs` (which may be a declaration).
#define SPEECHLLM_ASSIGN_OR_RETURN(lhs, rexpr)                                                   \
  SPEECHLLM_ASSIGN_OR_RETURN_IMPL_(SPEECHLLM_STATUS_CONCAT_(speechllm_statusor_, __LINE__), lhs, \
                                   rexpr)

#define SPEECHLLM_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                     \
  if (!statusor.ok()) return std::move(statusor).status();     \
  lhs = std::move(statusor).value()

#endif  // SPEECHLLM_ENGINE_STATUS_MACROS_H_
