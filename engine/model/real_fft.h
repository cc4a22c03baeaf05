// RealFft: forward FFT of real signals of even length n (n/2 + 1 complex bins), computed as a
// complex mixed-radix FFT of length n/2 (radices 4, 2, 5, other primes) plus the usual split step.
// It transforms kLanes signals at once, one per SIMD lane, which is how the log-mel front end uses
// it (4 frames per call, native SSE width on any x86-64). Immutable after construction; the const
// methods may run on several threads at once.
#ifndef SPEECHLLM_ENGINE_MODEL_REAL_FFT_H_
#define SPEECHLLM_ENGINE_MODEL_REAL_FFT_H_

#include <complex>
#include <vector>

namespace speechllm::engine {

class RealFft {
 public:
  static constexpr int kLanes = 4;
  // A vector of kLanes floats (GCC/Clang vector extension): one SSE register, so no spills.
  typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));
  struct ComplexLanes {
    Lanes re, im;
  };

  // Butterflies hold one radix's inputs in a fixed array: prime factors of n/2 above this are not
  // supported. A size bound keeps the tables small.
  static constexpr int kMaxPrimeFactor = 31;
  static constexpr int kMaxSize = 1 << 16;
  // Whether RealFft(n) may be built: n even, in [2, kMaxSize], and no prime factor of n/2 above
  // kMaxPrimeFactor. Config validation checks it (ModelConfig::Validate).
  static bool SupportsSize(int n);

  // `n` must pass SupportsSize().
  explicit RealFft(int n);

  int size() const { return n_; }

  // Transforms kLanes signals: in[j][lane] = sample j of signal `lane` (n entries); writes the
  // n/2 + 1 bins to out[k]. `scratch` is resized as needed.
  void ForwardLanes(const Lanes* in, ComplexLanes* out, std::vector<ComplexLanes>* scratch) const;
  // One signal: out[k] = sum_j in[j] exp(-2 pi i j k / n), k = 0 .. n/2 (convenience; uses lane 0).
  void Forward(const float* in, std::complex<float>* out) const;

 private:
  void ComplexFft(const ComplexLanes* in, ComplexLanes* out, int length, int stride,
                  size_t factor_index) const;

  int n_;
  int half_;
  std::vector<int> factors_;                         // of half_, radix 4 first
  std::vector<std::complex<float>> half_twiddles_;   // exp(-2 pi i j / half_), j < half_
  std::vector<std::complex<float>> split_twiddles_;  // exp(-2 pi i k / n), k <= half_
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_REAL_FFT_H_
