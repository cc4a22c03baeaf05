// EncoderBatchAttention: the attention of one batched encoder pass (AudioEncoder::EncodeBatch) in
// a fixed number of operations per layer, whatever the number of items. On a GPU this replaces
// several small launches per item and layer (the per-item path) with about eight per layer and
// bucket. Built per pass and used on the thread that runs the model.
#ifndef SPEECHLLM_ENGINE_MODEL_ENCODER_BATCH_ATTENTION_H_
#define SPEECHLLM_ENGINE_MODEL_ENCODER_BATCH_ATTENTION_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace speechllm::engine {

// Each item's cached and new keys are concatenated for all items at once, gathered into padded
// [items, heads, keys, head_dim] batches with a key mask, one per bucket of items of similar shape,
// and attended with scaled-dot-product attention.
class EncoderBatchAttention {
 public:
  // Item i has new_rows[i] >= 1 query rows (consecutive in the pass, in item order) and belongs to
  // group group_of_item[i]: a sequence's encoder cache, holding cached_rows_of_group[g] earlier
  // positions (0 for a full segment without a cache, which is a group of its own). Every row of
  // an item sees its group's cached keys, the new keys of the group's earlier items in this pass
  // and all of its own item's keys (block mode and full segments alike, ARCHITECTURE 5). Only the
  // groups with keep_keys_of_group[g] (a cache, not a full segment) get their keys back from
  // Forward. The index tensors go to `device` once.
  EncoderBatchAttention(const std::vector<int64_t>& new_rows,
                        const std::vector<int64_t>& group_of_item,
                        const std::vector<int64_t>& cached_rows_of_group,
                        const std::vector<bool>& keep_keys_of_group, at::Device device);

  // Padded products per layer, and the query-key pairs they compute (real and padding): the
  // buckets' cost, for tests and benchmarks.
  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  int64_t padded_pairs() const;

  // One layer: q (unscaled), k, v [total new rows, d_model] of the pass; cached_keys[g] /
  // cached_values[g] hold group g's cached rows [cached_rows_of_group[g], d_model] (undefined
  // where that is 0). Returns the attention output [total new rows, d_model]. `keys_out` /
  // `values_out`, when given, receive each kept group's keys / values after the pass (cached, then
  // every new row of its items; undefined for the other groups), as views of one tensor per layer
  // that holds the kept groups' rows only: a full segment's rows are not pinned by the caches.
  at::Tensor Forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                     const std::vector<at::Tensor>& cached_keys,
                     const std::vector<at::Tensor>& cached_values, int64_t num_heads,
                     std::vector<at::Tensor>* keys_out, std::vector<at::Tensor>* values_out) const;

 private:
  // Every group's keys (or values) in one [total keys, d_model] tensor: per group (kept groups
  // first) its cached rows, then the new rows of its items in pass order.
  at::Tensor Stack(const at::Tensor& fresh, const std::vector<at::Tensor>& cached) const;

  std::vector<int64_t> new_rows_, new_offsets_;                    // per item
  std::vector<int64_t> cached_rows_, group_offsets_, group_rows_;  // per group (stacked layout)
  std::vector<std::vector<int64_t>> items_of_group_;
  std::vector<bool> keep_;         // per group: its keys go back to the caller
  std::vector<int64_t> stacking_;  // the groups in stacked order: kept groups, then the others
  int64_t kept_rows_ = 0;          // stacked rows of the kept groups (a prefix of the stack)
  bool copy_kept_rows_ = false;    // the stack also holds rows of groups that are not kept
  // Items of similar shape attended in one padded product (the constructor says how they are
  // grouped); the tensors live on the pass's device.
  struct Bucket {
    int64_t items = 0, max_new_rows = 0, max_keys = 0;
    at::Tensor query_index;  // int64 [items * max_new_rows]: the pass row of each padded query
    at::Tensor key_index;    // int64 [items * max_keys]: the stacked row of each padded key
    at::Tensor output_rows;  // int64: the padded rows that hold real queries, in pass order
    at::Tensor pass_rows;    // int64: their pass rows (undefined when there is one bucket)
    at::Tensor key_mask;     // bool [items, 1, max_new_rows, max_keys], true = attend; undefined
                             // when no item of the bucket has padding keys
  };
  std::vector<Bucket> buckets_;
  int64_t total_new_rows_ = 0;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_ENCODER_BATCH_ATTENTION_H_
