#include "server/stream_registry.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/grpc_status.h"
#include "server/monotonic_clock.h"

namespace speechllm::server {

StreamRegistry::StreamRegistry(const ServerConfig& config) : config_(config) {
  reaper_ = std::thread([this] { ReaperLoop(); });
}

StreamRegistry::~StreamRegistry() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  reaper_.join();
}

absl::StatusOr<uint64_t> StreamRegistry::Add(std::weak_ptr<LimitedCall> call, bool idle_timeout) {
  absl::MutexLock lock(&mu_);
  if (draining_) {
    return WithRetryDelay(
        WithReason(absl::UnavailableError("server is draining: retry on another replica"),
                   "DRAINING"),
        config_.retry_delay);
  }
  if (static_cast<int64_t>(entries_.size()) >= config_.max_streams) {
    ++rejections_;
    return WithRetryDelay(
        WithReason(absl::ResourceExhaustedError(
                       absl::StrCat("server at its limit of ", config_.max_streams, " streams")),
                   "MAX_STREAMS"),
        config_.retry_delay);
  }
  const uint64_t id = next_id_++;
  const absl::Time now = MonotonicNow();
  Entry entry;
  entry.call = std::move(call);
  entry.start = entry.last_activity = now;
  entry.idle_timeout = idle_timeout;
  entries_[id] = std::move(entry);
  return id;
}

void StreamRegistry::Remove(uint64_t id) {
  absl::MutexLock lock(&mu_);
  entries_.erase(id);
}

void StreamRegistry::Touch(uint64_t id) {
  absl::MutexLock lock(&mu_);
  if (auto it = entries_.find(id); it != entries_.end()) it->second.last_activity = MonotonicNow();
}

void StreamRegistry::ReadsPaused(uint64_t id, bool paused) {
  absl::MutexLock lock(&mu_);
  if (auto it = entries_.find(id); it != entries_.end()) {
    it->second.reads_paused = paused;
    it->second.last_activity = MonotonicNow();
  }
}

void StreamRegistry::InputEnded(uint64_t id) {
  absl::MutexLock lock(&mu_);
  if (auto it = entries_.find(id); it != entries_.end()) it->second.input_ended = true;
}

void StreamRegistry::Finishing(uint64_t id) {
  absl::MutexLock lock(&mu_);
  if (auto it = entries_.find(id); it != entries_.end()) {
    it->second.finishing_since = std::min(it->second.finishing_since, MonotonicNow());
  }
}

int64_t StreamRegistry::active() {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(entries_.size());
}

int64_t StreamRegistry::admission_rejections() {
  absl::MutexLock lock(&mu_);
  return rejections_;
}

bool StreamRegistry::draining() {
  absl::MutexLock lock(&mu_);
  return draining_;
}

void StreamRegistry::BeginDrain() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

bool StreamRegistry::WaitEmpty(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto empty = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return entries_.empty(); };
  return mu_.AwaitWithTimeout(absl::Condition(&empty), timeout);
}

void StreamRegistry::ExpireAll(const absl::Status& status) {
  std::vector<std::shared_ptr<LimitedCall>> calls;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, entry] : entries_) {
      if (entry.expired) continue;
      entry.expired = true;
      if (auto call = entry.call.lock()) calls.push_back(std::move(call));
    }
  }
  for (const auto& call : calls) call->Expire(status);
}

void StreamRegistry::ReaperLoop() {
  while (true) {
    std::vector<std::pair<std::shared_ptr<LimitedCall>, absl::Status>> expired;
    std::vector<std::shared_ptr<LimitedCall>> stuck;
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      if (mu_.AwaitWithTimeout(absl::Condition(&stop), absl::Milliseconds(50))) return;
      const absl::Time now = MonotonicNow();
      for (auto& [id, entry] : entries_) {
        if (!entry.cancelled && now - entry.finishing_since > config_.idle_timeout) {
          entry.cancelled = true;
          if (auto call = entry.call.lock()) stuck.push_back(std::move(call));
        }
        if (entry.expired) continue;
        absl::Status status;
        if (now - entry.start > config_.max_stream_duration) {
          status = WithReason(absl::OutOfRangeError(absl::StrCat(
                                  "maximum stream duration of ",
                                  absl::FormatDuration(config_.max_stream_duration), " reached")),
                              "MAX_DURATION");
        } else if (entry.idle_timeout && !entry.reads_paused && !entry.input_ended &&
                   now - entry.last_activity > config_.idle_timeout) {
          status = WithReason(
              absl::OutOfRangeError(absl::StrCat("no message for the idle timeout of ",
                                                 absl::FormatDuration(config_.idle_timeout))),
              "IDLE_TIMEOUT");
        } else {
          continue;
        }
        entry.expired = true;
        if (auto call = entry.call.lock()) expired.emplace_back(std::move(call), status);
      }
    }
    // Outside the lock: ending a call may run its reactions, which remove it from the registry.
    for (auto& [call, status] : expired) call->Expire(status);
    for (auto& call : stuck) call->Cancel();
  }
}

}  // namespace speechllm::server
