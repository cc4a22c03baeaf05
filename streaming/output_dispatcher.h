// OutputDispatcher: the thread that drains the Engine's outputs and hands each to its Session's
// output half, found through a SequenceId -> weak_ptr<Session> registry (ids cross threads,
// pointers do not). Register/Unregister may be called from any thread; the dispatcher thread runs
// the sessions' code.
#ifndef SPEECHLLM_STREAMING_OUTPUT_DISPATCHER_H_
#define SPEECHLLM_STREAMING_OUTPUT_DISPATCHER_H_

#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "engine/engine.h"
#include "streaming/session.h"

namespace speechllm::streaming {

class OutputDispatcher {
 public:
  // Starts the thread; `engine` is not owned and must outlive Stop().
  explicit OutputDispatcher(engine::Engine* engine);
  ~OutputDispatcher();  // Stop()s

  void Register(const std::shared_ptr<Session>& session) ABSL_LOCKS_EXCLUDED(mu_);
  void Unregister(engine::SequenceId id) ABSL_LOCKS_EXCLUDED(mu_);
  // Stops the thread (outputs not yet dispatched are dropped). Idempotent.
  void Stop();

 private:
  void Loop();

  engine::Engine* engine_;
  absl::Mutex mu_;
  absl::flat_hash_map<engine::SequenceId, std::weak_ptr<Session>> sessions_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_OUTPUT_DISPATCHER_H_
