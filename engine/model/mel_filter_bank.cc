#include "engine/model/mel_filter_bank.h"

#include <algorithm>
#include <cmath>

namespace speechllm::engine {
namespace {

// Slaney scale constants (transformers audio_utils.hertz_to_mel, librosa): 15 mels at 1 kHz, then
// 27 mels per factor 6.4 in frequency.
constexpr double kMinLogHertz = 1000.0;
constexpr double kMinLogMel = 15.0;
const double kLogStep = 27.0 / std::log(6.4);

}  // namespace

double HertzToMelSlaney(double hertz) {
  if (hertz >= kMinLogHertz) return kMinLogMel + std::log(hertz / kMinLogHertz) * kLogStep;
  return 3.0 * hertz / 200.0;
}

double MelToHertzSlaney(double mel) {
  if (mel >= kMinLogMel) return kMinLogHertz * std::exp((mel - kMinLogMel) / kLogStep);
  return 200.0 * mel / 3.0;
}

MelFilterBank::MelFilterBank(int num_frequency_bins, int num_mel_bins, double min_hertz,
                             double max_hertz)
    : num_frequency_bins_(num_frequency_bins), num_mel_bins_(num_mel_bins) {
  // Filter edges: num_mel_bins + 2 points evenly spaced in mel (numpy.linspace rounding: i * step +
  // start, exact end point), mapped back to Hz.
  const double mel_min = HertzToMelSlaney(min_hertz);
  const double mel_max = HertzToMelSlaney(max_hertz);
  const int num_edges = num_mel_bins + 2;
  std::vector<double> edges(num_edges);
  const double mel_step = (mel_max - mel_min) / (num_edges - 1);
  for (int i = 0; i < num_edges; ++i) {
    const double mel = i == num_edges - 1 ? mel_max : i * mel_step + mel_min;
    edges[i] = MelToHertzSlaney(mel);
  }
  // FFT bin centre frequencies: linspace(0, sr/2, num_frequency_bins); sr/2 = max_hertz here.
  std::vector<double> bin_hertz(num_frequency_bins);
  const double bin_step = max_hertz / (num_frequency_bins - 1);
  for (int k = 0; k < num_frequency_bins; ++k) {
    bin_hertz[k] = k == num_frequency_bins - 1 ? max_hertz : k * bin_step;
  }
  dense_.assign(static_cast<size_t>(num_frequency_bins) * num_mel_bins, 0.0);
  filters_.resize(num_mel_bins);
  for (int m = 0; m < num_mel_bins; ++m) {
    const double lower = edges[m], centre = edges[m + 1], upper = edges[m + 2];
    const double area_norm =
        2.0 / (upper - lower);  // Slaney normalisation: constant energy per filter
    Filter& filter = filters_[m];
    filter.first_bin = -1;
    for (int k = 0; k < num_frequency_bins; ++k) {
      const double down = (bin_hertz[k] - lower) / (centre - lower);
      const double up = (upper - bin_hertz[k]) / (upper - centre);
      const double weight = std::max(0.0, std::min(down, up)) * area_norm;
      dense_[static_cast<size_t>(k) * num_mel_bins + m] = weight;
      if (weight > 0) {
        if (filter.first_bin < 0) filter.first_bin = k;
        filter.weights.resize(k - filter.first_bin + 1, 0.0f);
        filter.weights[k - filter.first_bin] = static_cast<float>(weight);
      }
    }
    if (filter.first_bin < 0) filter.first_bin = 0;  // an empty filter (too many mels for the bins)
  }
}

void MelFilterBank::Apply(const float* power, float* mel) const {
  for (int m = 0; m < num_mel_bins_; ++m) {
    const Filter& filter = filters_[m];
    const float* p = power + filter.first_bin;
    float acc = 0.0f;
    for (size_t i = 0; i < filter.weights.size(); ++i) acc += p[i] * filter.weights[i];
    mel[m] = acc;
  }
}

}  // namespace speechllm::engine
