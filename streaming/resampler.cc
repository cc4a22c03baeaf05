#include "streaming/resampler.h"

#include <soxr.h>

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"

namespace speechllm::streaming {
namespace {

constexpr int kMinRateHz = 1000;
constexpr int kMaxRateHz = 384000;
constexpr size_t kOutputBlock = 4096;  // soxr output buffer per soxr_process call, samples

}  // namespace

absl::StatusOr<std::unique_ptr<Resampler>> Resampler::Create(int input_rate_hz,
                                                             int output_rate_hz) {
  for (int rate : {input_rate_hz, output_rate_hz}) {
    if (rate < kMinRateHz || rate > kMaxRateHz) {
      return absl::InvalidArgumentError(
          absl::StrCat("resampler rate ", rate, " Hz is outside ", kMinRateHz, " to ", kMaxRateHz));
    }
  }
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  const soxr_runtime_spec_t runtime = soxr_runtime_spec(1);
  soxr_error_t error = nullptr;
  soxr_t soxr = soxr_create(input_rate_hz, output_rate_hz, 1, &error, &io, &quality, &runtime);
  if (error != nullptr || soxr == nullptr) {
    if (soxr != nullptr) soxr_delete(soxr);
    return absl::InternalError(absl::StrCat("soxr_create(", input_rate_hz, " -> ", output_rate_hz,
                                            ") failed: ", soxr_strerror(error)));
  }
  return std::unique_ptr<Resampler>(new Resampler(soxr, input_rate_hz, output_rate_hz));
}

Resampler::Resampler(soxr* soxr, int input_rate_hz, int output_rate_hz)
    : soxr_(soxr),
      input_rate_hz_(input_rate_hz),
      output_rate_hz_(output_rate_hz),
      block_samples_(static_cast<size_t>(std::max(input_rate_hz / 100, 1))) {
  pending_.reserve(block_samples_);
}

Resampler::~Resampler() { soxr_delete(soxr_); }

absl::Status Resampler::Run(const float* input, size_t count, std::vector<float>* out) {
  size_t consumed = 0;
  while (true) {
    const size_t old_size = out->size();
    out->resize(old_size + kOutputBlock);
    size_t idone = 0;
    size_t odone = 0;
    const soxr_error_t error =
        soxr_process(soxr_, input == nullptr ? nullptr : input + consumed, count - consumed, &idone,
                     out->data() + old_size, kOutputBlock, &odone);
    out->resize(old_size + odone);
    if (error != nullptr) {
      return absl::InternalError(absl::StrCat("soxr_process failed: ", soxr_strerror(error)));
    }
    consumed += idone;
    if (input == nullptr) {
      if (odone == 0) return absl::OkStatus();  // the filter tail is drained
      continue;
    }
    if (consumed == count && odone < kOutputBlock) return absl::OkStatus();
    if (idone == 0 && odone == 0) {
      return absl::InternalError("soxr_process made no progress");
    }
  }
}

absl::Status Resampler::Process(absl::Span<const float> input, std::vector<float>* out) {
  if (flushed_) return absl::FailedPreconditionError("Resampler::Process after Flush");
  const size_t out_before = out->size();
  absl::Cleanup count_output = [&] { output_samples_ += out->size() - out_before; };
  input_samples_ += static_cast<int64_t>(input.size());
  out->reserve(out->size() +
               static_cast<size_t>(static_cast<double>(input.size() + pending_.size()) *
                                   output_rate_hz_ / input_rate_hz_) +
               1);
  size_t used = 0;
  // Complete the held partial block first.
  if (!pending_.empty()) {
    used = std::min(block_samples_ - pending_.size(), input.size());
    pending_.insert(pending_.end(), input.begin(), input.begin() + used);
    if (pending_.size() < block_samples_) return absl::OkStatus();
    if (absl::Status status = Run(pending_.data(), block_samples_, out); !status.ok())
      return status;
    pending_.clear();
  }
  // Whole blocks straight from the input, one soxr_process call sequence per block.
  while (input.size() - used >= block_samples_) {
    if (absl::Status status = Run(input.data() + used, block_samples_, out); !status.ok())
      return status;
    used += block_samples_;
  }
  pending_.assign(input.begin() + used, input.end());
  return absl::OkStatus();
}

int64_t Resampler::OwedOutputSamples() const {
  return std::max<int64_t>(
      (input_samples_ * output_rate_hz_ + input_rate_hz_ / 2) / input_rate_hz_ - output_samples_,
      0);
}

int64_t Resampler::held_output_samples() const { return flushed_ ? 0 : OwedOutputSamples(); }

absl::Status Resampler::Flush(std::vector<float>* out) {
  if (flushed_) return absl::OkStatus();
  flushed_ = true;
  const size_t out_before = out->size();
  if (!pending_.empty()) {
    if (absl::Status status = Run(pending_.data(), pending_.size(), out); !status.ok())
      return status;
    pending_.clear();
  }
  if (absl::Status status = Run(nullptr, 0, out); !status.ok()) return status;
  // Land the running total on the rounded ratio, trimming or zero-padding what this call appended
  // (never below zero: soxr's output lags its input, so earlier calls are never ahead).
  const int64_t owed = OwedOutputSamples();
  out->resize(out_before + static_cast<size_t>(owed), 0.0f);
  output_samples_ += owed;
  return absl::OkStatus();
}

absl::Status Resampler::Drain(std::vector<float>* out) {
  if (flushed_) return absl::FailedPreconditionError("Resampler::Drain after Flush");
  if (absl::Status status = Flush(out); !status.ok()) return status;
  if (soxr_error_t error = soxr_clear(soxr_); error != nullptr) {
    return absl::InternalError(absl::StrCat("soxr_clear: ", error));
  }
  flushed_ = false;
  return absl::OkStatus();
}

}  // namespace speechllm::streaming
