#include "tools/bench/model_timing_util.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/time/clock.h"

namespace speechllm::bench {
namespace {

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

double TimeMs(const std::function<at::Tensor()>& fn, int reps) {
  for (int i = 0; i < 2; ++i) fn().sum().item<float>();
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    const absl::Time start = absl::Now();
    fn().sum().item<float>();
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
  }
  return Median(std::move(ms));
}

double HostEnqueueMs(const std::function<at::Tensor()>& fn, int reps) {
  fn().sum().item<float>();
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    const absl::Time start = absl::Now();
    const at::Tensor out = fn();
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    out.sum().item<float>();  // the device idle again before the next start
  }
  return Median(std::move(ms));
}

int64_t BlocksPerSequence(int64_t new_tokens, int64_t cached, int64_t block_size) {
  return (cached + new_tokens + block_size - 1) / block_size;
}
engine::DecoderBatch ContiguousBatch(int count, int64_t new_tokens, int64_t cached,
                                     int64_t block_size) {
  const int64_t blocks_per_sequence = BlocksPerSequence(new_tokens, cached, block_size);
  engine::DecoderBatch batch;
  for (int b = 0; b < count; ++b) {
    engine::DecoderSequence sequence{new_tokens, cached, {}};
    for (int64_t i = 0; i < blocks_per_sequence; ++i)
      sequence.block_table.push_back(b * blocks_per_sequence + i);
    batch.sequences.push_back(sequence);
  }
  return batch;
}

}  // namespace speechllm::bench
