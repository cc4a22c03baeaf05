// Resampler: streaming mono sample-rate conversion on libsoxr, the service's one resampler
// (MODEL.md 9 item 14: the resampler changes the features, so there is exactly one setting).
// Owned by one AudioDecoder (or a test/benchmark); called by that decoder's thread only.
#ifndef SPEECHLLM_STREAMING_RESAMPLER_H_
#define SPEECHLLM_STREAMING_RESAMPLER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

struct soxr;

namespace speechllm::streaming {

// Setting: soxr_quality_spec(SOXR_HQ, 0) = 20-bit precision, linear phase, passband to 0.913 of
// the lower Nyquist frequency (7.3 kHz at 16 kHz out), one thread, float32 in and out. soxr
// compensates its filter delay, so output sample k is at time k / output_rate. Input is fed to
// soxr in fixed blocks of 10 ms of input (the remainder waits for the next call or Flush), so
// the output is a function of the concatenated input alone, whatever the split across calls.
// Latency: output lags input by the filter delay plus at most one block, measured 37 ms at
// 48 kHz, 40 ms at 44.1 kHz and 114 ms at 8 kHz input; Flush() releases it at end of input.
class Resampler {
 public:
  // INVALID_ARGUMENT unless both rates are in [1000, 384000]; INTERNAL if soxr fails.
  static absl::StatusOr<std::unique_ptr<Resampler>> Create(int input_rate_hz, int output_rate_hz);
  ~Resampler();
  Resampler(const Resampler&) = delete;
  Resampler& operator=(const Resampler&) = delete;

  // Appends the output available for `input` (and earlier input) to `out`.
  absl::Status Process(absl::Span<const float> input, std::vector<float>* out);
  // End of input: feeds the held remainder, drains soxr's filter tail and appends it. Process()
  // must not be called afterwards.
  absl::Status Flush(std::vector<float>* out);
  // A break in the input (a client's Flush): appends everything held, as Flush() does, then starts
  // over as for a new signal, so the output so far covers all of the input so far. The filter
  // restarts from silence, as at the stream's start. After Flush() or Drain() the output so far
  // is round(input so far * output_rate / input_rate) samples: soxr rounds each piece it drains,
  // so the tail is trimmed or padded with zeros by a sample or so, and any number of Drains keeps
  // the output's clock on the input's.
  absl::Status Drain(std::vector<float>* out);

  // Output the input so far is still owed, held in the filter and the partial block: the rounded
  // ratio of the input so far less the output so far (0 after Flush() or Drain()). Output so far
  // plus this is the input's duration at the output rate, so the received audio a stream reports
  // does not trail its bytes by the filter delay.
  int64_t held_output_samples() const;

  int input_rate_hz() const { return input_rate_hz_; }
  int output_rate_hz() const { return output_rate_hz_; }

 private:
  Resampler(soxr* soxr, int input_rate_hz, int output_rate_hz);
  // Runs soxr on `input` (null = end of input) until it has consumed it all and drained its
  // output.
  absl::Status Run(const float* input, size_t count, std::vector<float>* out);
  // round(input so far * output_rate / input_rate) - output so far, at least 0.
  int64_t OwedOutputSamples() const;

  soxr* soxr_;
  const int input_rate_hz_;
  const int output_rate_hz_;
  const size_t block_samples_;  // input per soxr_process call
  std::vector<float> pending_;  // input not yet fed (fewer than block_samples_)
  bool flushed_ = false;
  int64_t input_samples_ = 0;   // since Create(), pending_ included
  int64_t output_samples_ = 0;  // appended since Create()
};

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_RESAMPLER_H_
