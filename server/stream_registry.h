// StreamRegistry: the live calls of the server. Admission (max_streams, draining), activity times
// for the idle timeout and the maximum stream duration, enforced by a reaper thread, and draining
// on shutdown. Calls are held as weak_ptrs to the LimitedCall interface, so the reaper can never
// touch a finished call. Thread safety: every method may be called from any thread.
#ifndef SPEECHLLM_SERVER_STREAM_REGISTRY_H_
#define SPEECHLLM_SERVER_STREAM_REGISTRY_H_

#include <cstdint>
#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/server_config.h"

namespace speechllm::server {

// A call the registry can end early.
class LimitedCall {
 public:
  virtual ~LimitedCall() = default;
  // Ends the call with `status` (OUT_OF_RANGE for a limit, UNAVAILABLE when draining). Called by
  // the reaper thread, at most once per call.
  virtual void Expire(const absl::Status& status) = 0;
  // The call's end (see StreamRegistry::Finishing) did not reach the client within the idle
  // timeout: drops the call (the client sees CANCELLED). Reaper thread, at most once; no lock of
  // the registry is held. Calls that never report Finishing need not implement it.
  virtual void Cancel() {}
};

class StreamRegistry {
 public:
  explicit StreamRegistry(const ServerConfig& config);
  ~StreamRegistry();  // stops the reaper

  // Admits a call: RESOURCE_EXHAUSTED (with a retry delay) at max_streams, UNAVAILABLE while
  // draining. `idle_timeout` false exempts it from the idle rule (unary calls). Returns the call's
  // id.
  absl::StatusOr<uint64_t> Add(std::weak_ptr<LimitedCall> call, bool idle_timeout);
  void Remove(uint64_t id);
  // The call showed activity (a message or a KeepAlive).
  void Touch(uint64_t id);
  // The idle rule holds only while the client can send and has something to send: not while the
  // server pauses reading (flow control; resuming restarts the idle clock), nor after the client
  // ended its audio (EndOfAudio) and waits for the finals.
  void ReadsPaused(uint64_t id, bool paused);
  void InputEnded(uint64_t id);
  // The call has its final status but cannot send it yet (a write is in flight). A client that
  // stops reading never lets that write complete, so a call still finishing after the idle
  // timeout is cancelled (LimitedCall::Cancel) and frees its stream slot and KV.
  void Finishing(uint64_t id);

  int64_t active() ABSL_LOCKS_EXCLUDED(mu_);
  int64_t admission_rejections() ABSL_LOCKS_EXCLUDED(mu_);
  bool draining() ABSL_LOCKS_EXCLUDED(mu_);
  // Refuses new calls from now on.
  void BeginDrain();
  // Waits up to `timeout` for every call to end; true if they did.
  bool WaitEmpty(absl::Duration timeout);
  // Ends every call still open with `status`.
  void ExpireAll(const absl::Status& status);

 private:
  struct Entry {
    std::weak_ptr<LimitedCall> call;
    absl::Time start, last_activity;
    bool idle_timeout = true;
    bool reads_paused = false;
    bool input_ended = false;
    bool expired = false;
    absl::Time finishing_since = absl::InfiniteFuture();
    bool cancelled = false;
  };
  void ReaperLoop();

  const ServerConfig config_;
  absl::Mutex mu_;
  absl::flat_hash_map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t rejections_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread reaper_;
};

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_STREAM_REGISTRY_H_
