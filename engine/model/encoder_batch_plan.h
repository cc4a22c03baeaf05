// EncoderBatchPlan: the index work of one batched encoder pass (AudioEncoder::EncodeBatch on
// CUDA), so that the pass costs a fixed number of tensor operations whatever its item count: the
// rows' positions, the attention through EncoderBatchAttention with the items' encoder caches as
// its groups (a full segment without a cache is a group of its own), and the pooling of position
// pairs per item. Built per pass on the thread that runs the model.
#ifndef SPEECHLLM_ENGINE_MODEL_ENCODER_BATCH_PLAN_H_
#define SPEECHLLM_ENGINE_MODEL_ENCODER_BATCH_PLAN_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "engine/model/audio_encoder.h"
#include "engine/model/encoder_batch_attention.h"

namespace speechllm::engine {

class EncoderBatchPlan {
 public:
  // `work` as EncodeBatch takes it (checked there); the caches are read here and extended by
  // Attend().
  EncoderBatchPlan(const std::vector<EncoderWork>& work, at::Device device);

  // The layer input: every item's conv rows plus their position embeddings, [rows, d_model].
  at::Tensor Input(const std::vector<EncoderWork>& work, const at::Tensor& embed_positions) const;
  // One layer's attention of q (unscaled), k, v over the pass; stores the new keys and values of
  // layer `layer` in the items' caches.
  at::Tensor Attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, size_t layer,
                    int64_t num_heads);
  // The mean of each item's position pairs (2t, 2t + 1), an odd last position dropped, as
  // AvgPool1d(2): [pooled rows of all items, d_model]; pooled_rows()[i] of them are item i's.
  at::Tensor Pool(const at::Tensor& x) const;
  const std::vector<int64_t>& pooled_rows() const { return pooled_rows_; }

 private:
  std::vector<EncoderKvCache*> caches_;  // per group; null for a full segment
  std::vector<int64_t> cached_rows_;     // per group, before the pass
  std::optional<EncoderBatchAttention> attention_;
  at::Tensor positions_;              // int64 [rows]: each row's encoder position
  at::Tensor even_rows_, odd_rows_;   // int64 [pooled rows]: the pair of each pooled row
  std::vector<int64_t> pooled_rows_;  // per item
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_ENCODER_BATCH_PLAN_H_
