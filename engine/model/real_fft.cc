#include "engine/model/real_fft.h"

#include <cassert>
#include <cmath>

namespace speechllm::engine {
namespace {

using cfloat = std::complex<float>;
using Lanes = RealFft::Lanes;
using CL = RealFft::ComplexLanes;

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

inline CL Add(const CL& a, const CL& b) { return {a.re + b.re, a.im + b.im}; }
inline CL Sub(const CL& a, const CL& b) { return {a.re - b.re, a.im - b.im}; }
inline CL Scale(float s, const CL& a) { return {s * a.re, s * a.im}; }
inline CL Mul(const CL& a, cfloat w) {
  return {a.re * w.real() - a.im * w.imag(), a.re * w.imag() + a.im * w.real()};
}
inline CL TimesMinusI(const CL& a) { return {a.im, -a.re}; }

// In-place forward DFT of five values (W = exp(-2 pi i / 5)).
inline void Butterfly5(CL* a) {
  const float c1 = 0.309016994374947424f;   // cos(2 pi / 5)
  const float c2 = -0.809016994374947424f;  // cos(4 pi / 5)
  const float s1 = 0.951056516295153572f;   // sin(2 pi / 5)
  const float s2 = 0.587785252292473129f;   // sin(4 pi / 5)
  const CL t1 = Add(a[1], a[4]), t2 = Add(a[2], a[3]), t3 = Sub(a[1], a[4]), t4 = Sub(a[2], a[3]);
  const CL b1 = Add(a[0], Add(Scale(c1, t1), Scale(c2, t2)));
  const CL b2 = Add(a[0], Add(Scale(c2, t1), Scale(c1, t2)));
  const CL r1 = TimesMinusI(Add(Scale(s1, t3), Scale(s2, t4)));
  const CL r2 = TimesMinusI(Sub(Scale(s2, t3), Scale(s1, t4)));
  a[0] = Add(a[0], Add(t1, t2));
  a[1] = Add(b1, r1);
  a[4] = Sub(b1, r1);
  a[2] = Add(b2, r2);
  a[3] = Sub(b2, r2);
}

inline void Butterfly4(CL* a) {
  const CL s02 = Add(a[0], a[2]), d02 = Sub(a[0], a[2]), s13 = Add(a[1], a[3]);
  const CL d13 = TimesMinusI(Sub(a[1], a[3]));
  a[0] = Add(s02, s13);
  a[1] = Add(d02, d13);
  a[2] = Sub(s02, s13);
  a[3] = Sub(d02, d13);
}

}  // namespace

bool RealFft::SupportsSize(int n) {
  if (n < 2 || n % 2 != 0 || n > kMaxSize) return false;
  for (const int factor : Factorize(n / 2)) {
    if (factor > kMaxPrimeFactor) return false;
  }
  return true;
}

RealFft::RealFft(int n) : n_(n), half_(n / 2) {
  assert(SupportsSize(n));
  factors_ = Factorize(half_);
  half_twiddles_.resize(half_);
  for (int j = 0; j < half_; ++j) {
    const double angle = -2.0 * M_PI * j / half_;
    half_twiddles_[j] =
        cfloat(static_cast<float>(std::cos(angle)), static_cast<float>(std::sin(angle)));
  }
  split_twiddles_.resize(half_ + 1);
  for (int k = 0; k <= half_; ++k) {
    const double angle = -2.0 * M_PI * k / n_;
    split_twiddles_[k] =
        cfloat(static_cast<float>(std::cos(angle)), static_cast<float>(std::sin(angle)));
  }
}

// Decimation in time: `length` = p * m; the p interleaved sub-sequences are transformed recursively
// into consecutive blocks of `out`, then combined with radix-p butterflies. The last factor reads
// the strided input directly.
void RealFft::ComplexFft(const CL* in, CL* out, int length, int stride, size_t factor_index) const {
  if (length == 1) {  // only when the whole transform has length 1 (n = 2)
    out[0] = in[0];
    return;
  }
  const int p = factors_[factor_index];
  const int m = length / p;
  if (m > 1) {
    for (int q = 0; q < p; ++q)
      ComplexFft(in + q * stride, out + q * m, m, stride * p, factor_index + 1);
  } else {
    for (int q = 0; q < p; ++q) out[q] = in[q * stride];
  }
  const int twiddle_step = half_ / length;  // W_length^j = W_half^(j * twiddle_step)
  CL a[kMaxPrimeFactor + 1];                // p is 4 or a prime <= kMaxPrimeFactor (SupportsSize)
  assert(p <= kMaxPrimeFactor + 1);
  for (int k = 0; k < m; ++k) {
    a[0] = out[k];
    for (int q = 1; q < p; ++q)
      a[q] = k == 0 ? out[q * m] : Mul(out[q * m + k], half_twiddles_[q * k * twiddle_step]);
    if (p == 2) {
      const CL sum = Add(a[0], a[1]);
      a[1] = Sub(a[0], a[1]);
      a[0] = sum;
    } else if (p == 4) {
      Butterfly4(a);
    } else if (p == 5) {
      Butterfly5(a);
    } else {  // any other prime: O(p^2) DFT
      CL sums[kMaxPrimeFactor + 1];
      const int root_step = half_ / p;  // W_p^r = W_half^(r * root_step)
      for (int r = 0; r < p; ++r) {
        CL acc = a[0];
        for (int q = 1, index = r; q < p; ++q, index = (index + r) % p) {
          acc = Add(acc, Mul(a[q], half_twiddles_[index * root_step]));
        }
        sums[r] = acc;
      }
      for (int r = 0; r < p; ++r) a[r] = sums[r];
    }
    for (int r = 0; r < p; ++r) out[r * m + k] = a[r];
  }
}

void RealFft::ForwardLanes(const Lanes* in, CL* out, std::vector<CL>* scratch) const {
  scratch->resize(2 * static_cast<size_t>(half_));
  CL* packed = scratch->data();
  CL* spectrum = packed + half_;
  for (int j = 0; j < half_; ++j) packed[j] = CL{in[2 * j], in[2 * j + 1]};
  ComplexFft(packed, spectrum, half_, 1, 0);
  // Split the packed spectrum Z into the spectrum X of the real signal:
  // X[k] = (Z[k] + conj(Z[h-k])) / 2 - i W_n^k (Z[k] - conj(Z[h-k])) / 2.
  for (int k = 0; k <= half_; ++k) {
    const CL& zk = spectrum[k == half_ ? 0 : k];
    const CL& zr = spectrum[k == 0 ? 0 : half_ - k];
    const CL even = {0.5f * (zk.re + zr.re), 0.5f * (zk.im - zr.im)};
    const CL odd = {0.5f * (zk.re - zr.re), 0.5f * (zk.im + zr.im)};
    out[k] = Add(even, TimesMinusI(Mul(odd, split_twiddles_[k])));
  }
}

void RealFft::Forward(const float* in, cfloat* out) const {
  std::vector<Lanes> lanes(n_);
  for (int j = 0; j < n_; ++j) {
    lanes[j] = Lanes{};
    lanes[j][0] = in[j];
  }
  std::vector<CL> spectrum(half_ + 1), scratch;
  ForwardLanes(lanes.data(), spectrum.data(), &scratch);
  for (int k = 0; k <= half_; ++k) out[k] = cfloat(spectrum[k].re[0], spectrum[k].im[0]);
}

}  // namespace speechllm::engine
