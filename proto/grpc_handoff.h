// Happens-before annotations for gRPC's callback API in ThreadSanitizer builds (scripts/tsan.sh
// defines SPEECHLLM_TSAN); no-ops in every other build. Debian's gRPC is not instrumented, so the
// sanitizer cannot see that an operation a reactor starts happens before the callback that reports
// it, which gRPC may run on any of its threads. Called by the reactors of server/ and client/; any
// thread may call them.
#ifndef SPEECHLLM_PROTO_GRPC_HANDOFF_H_
#define SPEECHLLM_PROTO_GRPC_HANDOFF_H_

#ifdef SPEECHLLM_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace speechllm {

// Reactors call GrpcHandoffRelease(this) just before starting an operation (StartCall, StartRead,
// StartWrite, Finish) and GrpcHandoffAcquire(this) first thing in each callback. Server reactions
// that OnDone may follow on another thread hold a GrpcReaction instead, which also releases after
// the reaction's last local (a MutexLock's unlock) is gone.
inline void GrpcHandoffRelease(const void* reactor) {
#ifdef SPEECHLLM_TSAN
  __tsan_release(const_cast<void*>(reactor));
#else
  (void)reactor;
#endif
}

inline void GrpcHandoffAcquire(const void* reactor) {
#ifdef SPEECHLLM_TSAN
  __tsan_acquire(const_cast<void*>(reactor));
#else
  (void)reactor;
#endif
}

// Acquires when a reaction starts and releases when it ends. Declare it first in the reaction, so
// that it outlives the reaction's other locals: gRPC runs OnDone (which acquires, and may free the
// reactor) on any thread once the last reaction returns, a hand-over inside libgrpc.
class GrpcReaction {
 public:
  explicit GrpcReaction(const void* reactor) : reactor_(reactor) { GrpcHandoffAcquire(reactor); }
  ~GrpcReaction() { GrpcHandoffRelease(reactor_); }
  GrpcReaction(const GrpcReaction&) = delete;
  GrpcReaction& operator=(const GrpcReaction&) = delete;

 private:
  const void* reactor_;
};

}  // namespace speechllm

#endif  // SPEECHLLM_PROTO_GRPC_HANDOFF_H_
