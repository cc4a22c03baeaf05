// RealFft: forward FFT of a real signal of even length n (n/2 + 1 complex bins), computed as a complex
// mixed-radix FFT of length n/2 (radices 4, 2, 3, 5 and any other prime) plus the usual split step.
// Written for the 400-point STFT of the Whisper front end, where it replaces a 400 x 201 DFT matrix.
// Immutable after construction; Forward is const and may run on several threads with their own buffers.
#ifndef SPEECHLLM_ENGINE_MODEL_REAL_FFT_H_
#define SPEECHLLM_ENGINE_MODEL_REAL_FFT_H_

#include <complex>
#include <vector>

namespace speechllm::engine {

class RealFft {
 public:
  // `n` must be even and >= 2.
  explicit RealFft(int n);

  int size() const { return n_; }
  // out[k] = sum_j in[j] exp(-2 pi i j k / n), k = 0 .. n/2. `scratch` is resized as needed.
  void Forward(const float* in, std::complex<float>* out, std::vector<std::complex<float>>* scratch) const;

 private:
  void ComplexFft(const std::complex<float>* in, std::complex<float>* out, int length, int stride,
                  size_t factor_index) const;

  int n_;
  int half_;
  std::vector<int> factors_;                        // of half_, largest radix first
  std::vector<std::complex<float>> half_twiddles_;  // exp(-2 pi i j / half_), j < half_
  std::vector<std::complex<float>> split_twiddles_; // exp(-2 pi i k / n), k <= half_
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_REAL_FFT_H_
