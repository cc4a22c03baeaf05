// MonotonicNow: the time of a clock that never steps (CLOCK_MONOTONIC through steady_clock) as
// an absl::Time, for timeouts only: a wall clock stepped forward (a VM resumed, NTP) would expire
// every stream's idle timeout at once, and stepped back would suspend them. Its values mean
// nothing as dates and compare only with each other. Any thread.
#ifndef SPEECHLLM_SERVER_MONOTONIC_CLOCK_H_
#define SPEECHLLM_SERVER_MONOTONIC_CLOCK_H_

#include <chrono>

#include "absl/time/time.h"

namespace speechllm::server {

inline absl::Time MonotonicNow() {
  return absl::UnixEpoch() + absl::FromChrono(std::chrono::steady_clock::now().time_since_epoch());
}

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_MONOTONIC_CLOCK_H_
