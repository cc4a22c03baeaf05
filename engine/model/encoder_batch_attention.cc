#include "engine/model/encoder_batch_attention.h"

#include <algorithm>

#include "engine/model/torch_compat.h"

namespace speechllm::engine {

EncoderBatchAttention::EncoderBatchAttention(const std::vector<int64_t>& new_rows,
                                             const std::vector<int64_t>& group_of_item,
                                             const std::vector<int64_t>& cached_rows_of_group,
                                             const std::vector<bool>& keep_keys_of_group,
                                             at::Device device)
    : new_rows_(new_rows), cached_rows_(cached_rows_of_group), keep_(keep_keys_of_group) {
  const int64_t items = static_cast<int64_t>(new_rows.size());
  const int64_t groups = static_cast<int64_t>(cached_rows_of_group.size());
  TORCH_CHECK(items > 0 && static_cast<int64_t>(group_of_item.size()) == items,
              "encoder batch attention: ", items, " items with ", group_of_item.size(), " groups");
  TORCH_CHECK(static_cast<int64_t>(keep_.size()) == groups,
              "encoder batch attention: ", keep_.size(), " keep flags for ", groups, " groups");
  items_of_group_.resize(groups);
  int64_t new_total = 0;
  for (int64_t i = 0; i < items; ++i) {
    const int64_t g = group_of_item[i];
    TORCH_CHECK(new_rows[i] >= 1 && g >= 0 && g < groups && cached_rows_of_group[g] >= 0,
                "encoder batch attention: item ", i, " has ", new_rows[i], " rows in group ", g);
    new_offsets_.push_back(new_total);
    new_total += new_rows[i];
    items_of_group_[g].push_back(i);
    max_new_rows_ = std::max(max_new_rows_, new_rows[i]);
  }
  // The stacked layout: per group its cached rows, then its items' new rows in pass order; the
  // kept groups first, so that their rows are one prefix. Item i sees its group's rows up to and
  // including its own.
  for (bool kept : {true, false}) {
    for (int64_t g = 0; g < groups; ++g) {
      if (keep_[g] == kept) stacking_.push_back(g);
    }
  }
  std::vector<int64_t> key_begin(items), key_count(items);
  group_offsets_.assign(groups, 0);
  group_rows_.assign(groups, 0);
  int64_t stacked = 0;
  for (int64_t g : stacking_) {
    group_offsets_[g] = stacked;
    int64_t rows = cached_rows_[g];
    for (int64_t i : items_of_group_[g]) {
      rows += new_rows[i];
      key_begin[i] = stacked;
      key_count[i] = rows;
      max_keys_ = std::max(max_keys_, rows);
    }
    group_rows_[g] = rows;
    stacked += rows;
    if (keep_[g]) kept_rows_ = stacked;
  }
  copy_kept_rows_ = kept_rows_ > 0 && kept_rows_ < stacked;
  // Padding points at row 0: padded queries are discarded, padded keys masked out.
  std::vector<int64_t> query_index(items * max_new_rows_, 0), key_index(items * max_keys_, 0);
  std::vector<int64_t> output_index;
  at::Tensor mask = at::zeros({items, 1, 1, max_keys_}, at::TensorOptions().dtype(at::kBool));
  bool* visible = mask.data_ptr<bool>();
  for (int64_t i = 0; i < items; ++i) {
    for (int64_t t = 0; t < new_rows[i]; ++t) {
      query_index[i * max_new_rows_ + t] = new_offsets_[i] + t;
      output_index.push_back(i * max_new_rows_ + t);
    }
    for (int64_t j = 0; j < key_count[i]; ++j) {
      key_index[i * max_keys_ + j] = key_begin[i] + j;
      visible[i * max_keys_ + j] = true;
    }
  }
  const auto long_options = at::TensorOptions().dtype(at::kLong);
  query_index_ = at::tensor(query_index, long_options).to(device);
  key_index_ = at::tensor(key_index, long_options).to(device);
  output_index_ = at::tensor(output_index, long_options).to(device);
  // Without padding keys no mask is needed, which lets SDPA pick its fastest (flash) kernel.
  bool padded_keys = false;
  for (int64_t i = 0; i < items; ++i) padded_keys |= key_count[i] < max_keys_;
  if (padded_keys)
    key_mask_ = mask.expand({items, 1, max_new_rows_, max_keys_}).contiguous().to(device);
}

at::Tensor EncoderBatchAttention::Stack(const at::Tensor& fresh,
                                        const std::vector<at::Tensor>& cached) const {
  std::vector<at::Tensor> parts;
  for (int64_t g : stacking_) {
    if (cached_rows_[g] > 0) {
      TORCH_CHECK(cached[g].defined() && cached[g].size(0) == cached_rows_[g],
                  "encoder batch attention: group ", g, " cache does not hold ", cached_rows_[g],
                  " rows");
      parts.push_back(cached[g]);
    }
    for (int64_t i : items_of_group_[g])
      parts.push_back(fresh.narrow(0, new_offsets_[i], new_rows_[i]));
  }
  return parts.size() == 1 ? parts[0] : at::cat(parts, 0);
}

at::Tensor EncoderBatchAttention::Forward(const at::Tensor& q, const at::Tensor& k,
                                          const at::Tensor& v,
                                          const std::vector<at::Tensor>& cached_keys,
                                          const std::vector<at::Tensor>& cached_values,
                                          int64_t num_heads, std::vector<at::Tensor>* keys_out,
                                          std::vector<at::Tensor>* values_out) const {
  const int64_t items = static_cast<int64_t>(new_rows_.size());
  const int64_t d_model = q.size(1), head_dim = d_model / num_heads;
  const at::Tensor all_keys = Stack(k, cached_keys);
  const at::Tensor all_values = Stack(v, cached_values);
  // [items, heads, rows, head_dim] views of the gathered rows.
  auto padded = [&](const at::Tensor& flat, const at::Tensor& index, int64_t rows) {
    return flat.index_select(0, index).view({items, rows, num_heads, head_dim}).transpose(1, 2);
  };
  const at::Tensor context =
      ScaledDotProductAttention(
          padded(q, query_index_, max_new_rows_), padded(all_keys, key_index_, max_keys_),
          padded(all_values, key_index_, max_keys_),
          key_mask_.defined() ? c10::optional<at::Tensor>(key_mask_) : c10::nullopt, false)
          .transpose(1, 2)
          .reshape({items * max_new_rows_, d_model});
  if (keys_out != nullptr) {
    // The caches keep views of the kept rows. When the stack also holds a full segment's rows,
    // the kept prefix is copied once (one copy per layer, whatever the number of items), so that
    // the caches do not pin those rows until every sequence of the pass has moved on.
    auto kept = [&](const at::Tensor& all) {
      return copy_kept_rows_ ? all.narrow(0, 0, kept_rows_).clone() : all;
    };
    const at::Tensor kept_keys = kept(all_keys), kept_values = kept(all_values);
    keys_out->clear();
    values_out->clear();
    for (size_t g = 0; g < cached_rows_.size(); ++g) {
      const bool keep = keep_[g];
      keys_out->push_back(keep ? kept_keys.narrow(0, group_offsets_[g], group_rows_[g])
                               : at::Tensor());
      values_out->push_back(keep ? kept_values.narrow(0, group_offsets_[g], group_rows_[g])
                                 : at::Tensor());
    }
  }
  return context.index_select(0, output_index_);
}

}  // namespace speechllm::engine
