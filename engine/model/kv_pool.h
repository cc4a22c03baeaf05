// KvPool: the decoder's key/value memory as fixed-size blocks per layer ([num_blocks * block_size,
// num_kv_heads, head_dim] for keys and for values). Sequences address it through block tables, so
// the same pool serves one offline clip or many streams. Holds tensors only; which blocks belong to
// whom is the caller's bookkeeping. Owned and touched only by the thread that runs the model.
#ifndef SPEECHLLM_ENGINE_MODEL_KV_POOL_H_
#define SPEECHLLM_ENGINE_MODEL_KV_POOL_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

#include "engine/model/model_config.h"

namespace speechllm::engine {

class KvPool {
 public:
  KvPool(const TextConfig& config, int64_t num_blocks, int64_t block_size, at::ScalarType dtype,
         at::Device device);

  int64_t num_blocks() const { return num_blocks_; }
  int64_t block_size() const { return block_size_; }
  // Bytes of K and V for one token over all layers.
  int64_t BytesPerToken() const;

  // Stores keys/values [tokens, num_kv_heads, head_dim] of `layer` at the flat slots
  // (block * block_size + offset), int64 [tokens] on the pool's device.
  void Write(int layer, const at::Tensor& slots, const at::Tensor& keys, const at::Tensor& values);
  // Keys and values of the first `num_tokens` tokens of a sequence whose blocks are `block_table`
  // (int64 [blocks] on the pool's device): two [num_tokens, num_kv_heads, head_dim] tensors.
  std::pair<at::Tensor, at::Tensor> Gather(int layer, const at::Tensor& block_table,
                                           int64_t num_tokens) const;
  // Keys and values at flat `slots` (int64 [n]): two [n, num_kv_heads, head_dim] tensors.
  std::pair<at::Tensor, at::Tensor> GatherSlots(int layer, const at::Tensor& slots) const {
    return {keys_[layer].index_select(0, slots), values_[layer].index_select(0, slots)};
  }
  // The pool tensors of one layer, [num_blocks * block_size, num_kv_heads, head_dim] (for kernels
  // that read slots in place).
  const at::Tensor& keys(int layer) const { return keys_[layer]; }
  const at::Tensor& values(int layer) const { return values_[layer]; }
  // Copies block `source` to block `destination` in every layer (copy-on-write of shared blocks).
  void CopyBlock(int64_t source, int64_t destination);

 private:
  int64_t num_blocks_, block_size_, num_kv_heads_, head_dim_;
  std::vector<at::Tensor> keys_, values_;  // per layer
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_KV_POOL_H_
