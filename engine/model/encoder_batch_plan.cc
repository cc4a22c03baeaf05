#include "engine/model/encoder_batch_plan.h"

#include <map>

#include "engine/model/device_upload.h"

namespace speechllm::engine {

EncoderBatchPlan::EncoderBatchPlan(const std::vector<EncoderWork>& work, at::Device device) {
  std::map<EncoderKvCache*, int64_t> group_of_cache;
  std::vector<int64_t> new_rows, group_of_item, positions, even, odd;
  std::vector<bool> keep_keys;  // per group: a cache (a full segment's keys are not kept)
  int64_t row = 0;
  for (const EncoderWork& item : work) {
    const int64_t n = item.conv.size(0);
    new_rows.push_back(n);
    auto [it, inserted] = group_of_cache.emplace(item.cache, static_cast<int64_t>(caches_.size()));
    if (item.cache == nullptr || inserted) {
      group_of_item.push_back(static_cast<int64_t>(caches_.size()));
      caches_.push_back(item.cache);
      cached_rows_.push_back(item.cache != nullptr ? item.cache->num_positions : 0);
      keep_keys.push_back(item.cache != nullptr);
    } else {
      group_of_item.push_back(it->second);
    }
    for (int64_t t = 0; t < n; ++t) positions.push_back(item.first_position + t);
    for (int64_t t = 0; t + 1 < n; t += 2) {
      even.push_back(row + t);
      odd.push_back(row + t + 1);
    }
    pooled_rows_.push_back(n / 2);
    row += n;
  }
  attention_.emplace(new_rows, group_of_item, cached_rows_, keep_keys, device);
  positions_ = UploadValues(positions, device);
  even_rows_ = UploadValues(even, device);
  odd_rows_ = UploadValues(odd, device);
}

at::Tensor EncoderBatchPlan::Input(const std::vector<EncoderWork>& work,
                                   const at::Tensor& embed_positions) const {
  std::vector<at::Tensor> conv;
  for (const EncoderWork& item : work) conv.push_back(item.conv);
  return (conv.size() == 1 ? conv[0] : at::cat(conv, 0)) +
         embed_positions.index_select(0, positions_);
}

at::Tensor EncoderBatchPlan::Attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                    size_t layer, int64_t num_heads) {
  std::vector<at::Tensor> keys, values, new_keys, new_values;
  for (size_t g = 0; g < caches_.size(); ++g) {
    const bool cached = cached_rows_[g] > 0;
    keys.push_back(cached ? caches_[g]->keys[layer] : at::Tensor());
    values.push_back(cached ? caches_[g]->values[layer] : at::Tensor());
  }
  at::Tensor out = attention_->Forward(q, k, v, keys, values, num_heads, &new_keys, &new_values);
  for (size_t g = 0; g < caches_.size(); ++g) {
    if (caches_[g] == nullptr) continue;
    caches_[g]->keys[layer] = new_keys[g];
    caches_[g]->values[layer] = new_values[g];
  }
  return out;
}

at::Tensor EncoderBatchPlan::Pool(const at::Tensor& x) const {
  // (a + b) * 0.5 rounds like AvgPool1d's (a + b) / 2: halving is exact.
  return (x.index_select(0, even_rows_) + x.index_select(0, odd_rows_)) * 0.5;
}

}  // namespace speechllm::engine
