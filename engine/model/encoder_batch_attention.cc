#include "engine/model/encoder_batch_attention.h"

#include <algorithm>
#include <utility>

#include "engine/model/device_upload.h"
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
    }
    group_rows_[g] = rows;
    stacked += rows;
    if (keep_[g]) kept_rows_ = stacked;
  }
  copy_kept_rows_ = kept_rows_ > 0 && kept_rows_ < stacked;

  // Buckets: the items sorted by (new rows, keys), largest first; an item joins the open bucket
  // while the bucket's padded area (items x most new rows x most keys) stays within twice the
  // query-key pairs its items really have, else it opens the next bucket. One padded product for
  // every item made a pass with one exact final's re-encode (500 new rows) pad 50 chunks of 50
  // rows to 500 each.
  std::vector<int64_t> order(items);
  for (int64_t i = 0; i < items; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    if (new_rows[a] != new_rows[b]) return new_rows[a] > new_rows[b];
    return key_count[a] > key_count[b];
  });
  std::vector<std::vector<int64_t>> members;
  int64_t bucket_new = 0, bucket_keys = 0, bucket_pairs = 0;
  for (int64_t i : order) {
    const int64_t pairs = new_rows[i] * key_count[i];
    if (!members.empty()) {
      const int64_t count = static_cast<int64_t>(members.back().size()) + 1;
      const int64_t padded =
          count * std::max(bucket_new, new_rows[i]) * std::max(bucket_keys, key_count[i]);
      if (padded <= 2 * (bucket_pairs + pairs)) {
        members.back().push_back(i);
        bucket_new = std::max(bucket_new, new_rows[i]);
        bucket_keys = std::max(bucket_keys, key_count[i]);
        bucket_pairs += pairs;
        continue;
      }
    }
    members.push_back({i});
    bucket_new = new_rows[i];
    bucket_keys = key_count[i];
    bucket_pairs = pairs;
  }
  for (const std::vector<int64_t>& bucket_items : members) {
    Bucket bucket;
    bucket.items = static_cast<int64_t>(bucket_items.size());
    for (int64_t i : bucket_items) {
      bucket.max_new_rows = std::max(bucket.max_new_rows, new_rows[i]);
      bucket.max_keys = std::max(bucket.max_keys, key_count[i]);
    }
    // Padding points at row 0: padded queries are discarded, padded keys masked out.
    std::vector<int64_t> query_index(bucket.items * bucket.max_new_rows, 0);
    std::vector<int64_t> key_index(bucket.items * bucket.max_keys, 0);
    std::vector<std::pair<int64_t, int64_t>> rows;  // (pass row, padded row), real rows only
    at::Tensor mask =
        at::zeros({bucket.items, 1, 1, bucket.max_keys}, at::TensorOptions().dtype(at::kBool));
    bool* visible = mask.data_ptr<bool>();
    bool padded_keys = false;
    for (int64_t b = 0; b < bucket.items; ++b) {
      const int64_t i = bucket_items[b];
      for (int64_t t = 0; t < new_rows[i]; ++t) {
        query_index[b * bucket.max_new_rows + t] = new_offsets_[i] + t;
        rows.emplace_back(new_offsets_[i] + t, b * bucket.max_new_rows + t);
      }
      for (int64_t j = 0; j < key_count[i]; ++j) {
        key_index[b * bucket.max_keys + j] = key_begin[i] + j;
        visible[b * bucket.max_keys + j] = true;
      }
      padded_keys |= key_count[i] < bucket.max_keys;
    }
    // In pass order, so that a single bucket's output is one index_select.
    std::sort(rows.begin(), rows.end());
    std::vector<int64_t> pass_rows, output_rows;
    for (const auto& [pass_row, padded_row] : rows) {
      pass_rows.push_back(pass_row);
      output_rows.push_back(padded_row);
    }
    bucket.query_index = UploadValues(query_index, device);
    bucket.key_index = UploadValues(key_index, device);
    bucket.output_rows = UploadValues(output_rows, device);
    if (members.size() > 1) bucket.pass_rows = UploadValues(pass_rows, device);
    // Without padding keys no mask is needed, which lets SDPA pick its fastest (flash) kernel.
    if (padded_keys) {
      bucket.key_mask = UploadTensor(mask, device, at::kBool)
                            .expand({bucket.items, 1, bucket.max_new_rows, bucket.max_keys})
                            .contiguous();
    }
    buckets_.push_back(std::move(bucket));
  }
  total_new_rows_ = new_total;
}

int64_t EncoderBatchAttention::padded_pairs() const {
  int64_t pairs = 0;
  for (const Bucket& bucket : buckets_)
    pairs += bucket.items * bucket.max_new_rows * bucket.max_keys;
  return pairs;
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
  // One part is a view into the fused q/k/v product: packed, so that caches do not pin it.
  return parts.size() == 1 ? parts[0].contiguous() : at::cat(parts, 0);
}

at::Tensor EncoderBatchAttention::Forward(const at::Tensor& q, const at::Tensor& k,
                                          const at::Tensor& v,
                                          const std::vector<at::Tensor>& cached_keys,
                                          const std::vector<at::Tensor>& cached_values,
                                          int64_t num_heads, std::vector<at::Tensor>* keys_out,
                                          std::vector<at::Tensor>* values_out) const {
  const int64_t d_model = q.size(1), head_dim = d_model / num_heads;
  const at::Tensor all_keys = Stack(k, cached_keys);
  const at::Tensor all_values = Stack(v, cached_values);
  // Per bucket: [items, heads, rows, head_dim] views of the gathered rows, one padded product.
  auto attend = [&](const Bucket& bucket) {
    auto padded = [&](const at::Tensor& flat, const at::Tensor& index, int64_t rows) {
      return flat.index_select(0, index)
          .view({bucket.items, rows, num_heads, head_dim})
          .transpose(1, 2);
    };
    return ScaledDotProductAttention(padded(q, bucket.query_index, bucket.max_new_rows),
                                     padded(all_keys, bucket.key_index, bucket.max_keys),
                                     padded(all_values, bucket.key_index, bucket.max_keys),
                                     bucket.key_mask.defined()
                                         ? c10::optional<at::Tensor>(bucket.key_mask)
                                         : c10::nullopt,
                                     false)
        .transpose(1, 2)
        .reshape({bucket.items * bucket.max_new_rows, d_model})
        .index_select(0, bucket.output_rows);
  };
  at::Tensor context;
  if (buckets_.size() == 1) {
    context = attend(buckets_[0]);  // already in pass order
  } else {
    context = at::empty({total_new_rows_, d_model}, q.options());
    for (const Bucket& bucket : buckets_) context.index_copy_(0, bucket.pass_rows, attend(bucket));
  }
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
  return context;
}

}  // namespace speechllm::engine
