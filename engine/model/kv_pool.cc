#include "engine/model/kv_pool.h"

namespace speechllm::engine {

KvPool::KvPool(const TextConfig& config, int64_t num_blocks, int64_t block_size,
               at::ScalarType dtype, at::Device device)
    : num_blocks_(num_blocks),
      block_size_(block_size),
      num_kv_heads_(config.num_kv_heads),
      head_dim_(config.head_dim) {
  const auto options = at::TensorOptions().dtype(dtype).device(device);
  for (int i = 0; i < config.num_layers; ++i) {
    keys_.push_back(at::zeros({num_blocks * block_size, num_kv_heads_, head_dim_}, options));
    values_.push_back(at::zeros({num_blocks * block_size, num_kv_heads_, head_dim_}, options));
  }
}

int64_t KvPool::BytesPerToken() const {
  if (keys_.empty()) return 0;
  return 2 * static_cast<int64_t>(keys_.size()) * num_kv_heads_ * head_dim_ *
         keys_[0].element_size();
}

void KvPool::Write(int layer, const at::Tensor& slots, const at::Tensor& keys,
                   const at::Tensor& values) {
  keys_[layer].index_copy_(0, slots, keys);
  values_[layer].index_copy_(0, slots, values);
}

std::pair<at::Tensor, at::Tensor> KvPool::Gather(int layer, const at::Tensor& block_table,
                                                 int64_t num_tokens) const {
  auto gather = [&](const at::Tensor& pool) {
    return pool.view({num_blocks_, block_size_, num_kv_heads_, head_dim_})
        .index_select(0, block_table)
        .view({-1, num_kv_heads_, head_dim_})
        .narrow(0, 0, num_tokens);
  };
  return {gather(keys_[layer]), gather(values_[layer])};
}

void KvPool::CopyBlock(int64_t source, int64_t destination) {
  for (size_t i = 0; i < keys_.size(); ++i) {
    keys_[i]
        .narrow(0, destination * block_size_, block_size_)
        .copy_(keys_[i].narrow(0, source * block_size_, block_size_));
    values_[i]
        .narrow(0, destination * block_size_, block_size_)
        .copy_(values_[i].narrow(0, source * block_size_, block_size_));
  }
}

}  // namespace speechllm::engine
