// The CPU BLAS library's own worker threads (OpenBLAS, which Debian's libtorch calls for matrix
// products), found at run time: libtorch's thread setting does not reach them. On a busy CPU
// server those workers spin between products and take the cores that the gRPC and audio threads
// need (docs/benchmarks.md, "BLAS threads"). Torch-free; called on the thread that loads the model.
#ifndef SPEECHLLM_ENGINE_MODEL_BLAS_THREADS_H_
#define SPEECHLLM_ENGINE_MODEL_BLAS_THREADS_H_

#include <string>

namespace speechllm::engine {

// The BLAS library in this process whose threads can be set: "OpenBLAS", or empty when there is
// none (another BLAS, or one linked without its symbols visible).
std::string BlasLibraryName();

// The library's thread count, or -1 without one.
int BlasThreads();

// Sets the library's thread count (>= 1); false without one.
bool SetBlasThreads(int threads);

// The count under load for a server on the CPU: one less than libtorch's intra-op threads (the
// cores it uses), at least one, so that a core stays for the threads that are not the model's.
int AutomaticBlasThreads(int intra_op_threads);

// Live sequences up to which the automatic policy keeps the library's own thread count.
inline constexpr int64_t kFullBlasUpToSequences = 16;

// RuntimeOptions::blas_threads on the model thread. 0 leaves the library alone and N sets N once.
// -1 (automatic) keeps the library's own count while at most kFullBlasUpToSequences sequences are
// live (one request runs fastest with every core) and AutomaticBlasThreads beyond (the gRPC and
// audio threads of many streams need a core, and idle BLAS workers spin on theirs).
class BlasThreadPolicy {
 public:
  BlasThreadPolicy() = default;
  // Sets a fixed count at once; `cpu` false (a CUDA model) leaves the library alone.
  BlasThreadPolicy(int option, bool cpu, int intra_op_threads);
  // Before each step: the automatic policy's count for `live_sequences` (a call only on change).
  void Apply(int64_t live_sequences);
  int current() const { return current_; }
  // "OpenBLAS 2 up to 16 sequences, 1 beyond (automatic)", "OpenBLAS 1", ... for start-up logs.
  std::string Summary() const;

 private:
  std::string library_;
  bool adaptive_ = false;
  bool fixed_ = false;  // set once from the option
  int full_ = -1;       // the library's own count
  int reduced_ = -1;
  int current_ = -1;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_BLAS_THREADS_H_
