// Happens-before annotations for gRPC's callback API, for ThreadSanitizer builds (scripts/tsan.sh
// defines SPEECHLLM_TSAN); no-ops in every other build. Debian's gRPC is not instrumented, so the
// sanitizer cannot see that an operation a reactor starts (StartCall, StartRead, StartWrite,
// Finish) happens before the callback that reports it, which gRPC may run on any of its threads.
// Reactors (server/ and client/) call GrpcHandoffRelease(this) just before starting an operation
// and GrpcHandoffAcquire(this) first thing in each callback; any thread may call them.
#ifndef SPEECHLLM_PROTO_GRPC_HANDOFF_H_
#define SPEECHLLM_PROTO_GRPC_HANDOFF_H_

#ifdef SPEECHLLM_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace speechllm {

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

}  // namespace speechllm

#endif  // SPEECHLLM_PROTO_GRPC_HANDOFF_H_
