// Slaney-style mel filter bank as transformers' audio_utils.mel_filter_bank(norm="slaney",
// mel_scale="slaney") builds it for the Whisper feature extractor (MODEL.md 1.2), computed in
// double. Stored both dense ([num_frequency_bins x num_mel_bins], HF's layout) and as per-filter
// bin ranges for the sparse projection. Immutable after construction; safe to share across threads.
#ifndef SPEECHLLM_ENGINE_MODEL_MEL_FILTER_BANK_H_
#define SPEECHLLM_ENGINE_MODEL_MEL_FILTER_BANK_H_

#include <vector>

namespace speechllm::engine {

// Slaney mel scale: linear below 1 kHz (3 f / 200), logarithmic above.
double HertzToMelSlaney(double hertz);
double MelToHertzSlaney(double mel);

class MelFilterBank {
 public:
  MelFilterBank(int num_frequency_bins, int num_mel_bins, double min_hertz, double max_hertz);

  int num_frequency_bins() const { return num_frequency_bins_; }
  int num_mel_bins() const { return num_mel_bins_; }
  // Dense weights, row-major [num_frequency_bins][num_mel_bins] (transformers' mel_filters layout).
  const std::vector<double>& dense() const { return dense_; }

  // mel[m] = sum_k power[k] * weight(k, m) over the nonzero bins of filter m.
  void Apply(const float* power, float* mel) const;

 private:
  struct Filter {
    int first_bin;
    std::vector<float> weights;
  };
  int num_frequency_bins_;
  int num_mel_bins_;
  std::vector<double> dense_;
  std::vector<Filter> filters_;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_MEL_FILTER_BANK_H_
