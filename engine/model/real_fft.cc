#include "engine/model/real_fft.h"

#include <cassert>
#include <cmath>

namespace speechllm::engine {
namespace {

using cfloat = std::complex<float>;

std::vector<int> Factorize(int n) {
  std::vector<int> factors;
  while (n % 4 == 0) {
    factors.push_back(4);
    n /= 4;
  }
  for (int p = 2; n > 1; ++p) {
    while (n % p == 0) {
      factors.push_back(p);
      n /= p;
    }
  }
  return factors;
}

}  // namespace

RealFft::RealFft(int n) : n_(n), half_(n / 2) {
  assert(n >= 2 && n % 2 == 0);
  factors_ = Factorize(half_);
  half_twiddles_.resize(half_);
  for (int j = 0; j < half_; ++j) {
    const double angle = -2.0 * M_PI * j / half_;
    half_twiddles_[j] = cfloat(static_cast<float>(std::cos(angle)), static_cast<float>(std::sin(angle)));
  }
  split_twiddles_.resize(half_ + 1);
  for (int k = 0; k <= half_; ++k) {
    const double angle = -2.0 * M_PI * k / n_;
    split_twiddles_[k] = cfloat(static_cast<float>(std::cos(angle)), static_cast<float>(std::sin(angle)));
  }
}

// Decimation in time: `length` = p * m; the p interleaved sub-sequences are transformed recursively into
// consecutive blocks of `out`, then combined with radix-p butterflies.
void RealFft::ComplexFft(const cfloat* in, cfloat* out, int length, int stride, size_t factor_index) const {
  if (length == 1) {
    out[0] = in[0];
    return;
  }
  const int p = factors_[factor_index];
  const int m = length / p;
  for (int q = 0; q < p; ++q) ComplexFft(in + q * stride, out + q * m, m, stride * p, factor_index + 1);

  const int twiddle_step = half_ / length;  // W_length^j = W_half^(j * twiddle_step)
  if (p == 2) {
    for (int k = 0; k < m; ++k) {
      const cfloat a = out[k];
      const cfloat b = out[m + k] * half_twiddles_[k * twiddle_step];
      out[k] = a + b;
      out[m + k] = a - b;
    }
    return;
  }
  if (p == 4) {
    for (int k = 0; k < m; ++k) {
      const cfloat a0 = out[k];
      const cfloat a1 = out[m + k] * half_twiddles_[k * twiddle_step];
      const cfloat a2 = out[2 * m + k] * half_twiddles_[2 * k * twiddle_step];
      const cfloat a3 = out[3 * m + k] * half_twiddles_[3 * k * twiddle_step];
      const cfloat s02 = a0 + a2, d02 = a0 - a2, s13 = a1 + a3, d13 = a1 - a3;
      const cfloat d13_times_minus_i(d13.imag(), -d13.real());
      out[k] = s02 + s13;
      out[m + k] = d02 + d13_times_minus_i;
      out[2 * m + k] = s02 - s13;
      out[3 * m + k] = d02 - d13_times_minus_i;
    }
    return;
  }
  // Generic radix p (3, 5, other primes): O(p^2) butterfly.
  cfloat t[64];
  cfloat* sums = t + 32;
  assert(p <= 32);
  const int root_step = half_ / p;  // W_p^r = W_half^(r * root_step)
  for (int k = 0; k < m; ++k) {
    for (int q = 0; q < p; ++q) t[q] = out[q * m + k] * half_twiddles_[(q * k * twiddle_step) % half_];
    for (int r = 0; r < p; ++r) {
      cfloat acc = t[0];
      for (int q = 1; q < p; ++q) acc += t[q] * half_twiddles_[((q * r) % p) * root_step];
      sums[r] = acc;
    }
    for (int r = 0; r < p; ++r) out[r * m + k] = sums[r];
  }
}

void RealFft::Forward(const float* in, cfloat* out, std::vector<cfloat>* scratch) const {
  scratch->resize(2 * static_cast<size_t>(half_));
  cfloat* packed = scratch->data();
  cfloat* spectrum = packed + half_;
  for (int j = 0; j < half_; ++j) packed[j] = cfloat(in[2 * j], in[2 * j + 1]);
  ComplexFft(packed, spectrum, half_, 1, 0);
  // Split the packed spectrum Z into the spectrum X of the real signal:
  // X[k] = (Z[k] + conj(Z[h-k])) / 2 - i W_n^k (Z[k] - conj(Z[h-k])) / 2.
  for (int k = 0; k <= half_; ++k) {
    const cfloat zk = spectrum[k % half_];
    const cfloat zc = std::conj(spectrum[(half_ - k) % half_]);
    const cfloat even = 0.5f * (zk + zc);
    const cfloat odd = 0.5f * (zk - zc);
    const cfloat rotated = split_twiddles_[k] * odd;
    out[k] = even + cfloat(rotated.imag(), -rotated.real());
  }
}

}  // namespace speechllm::engine
