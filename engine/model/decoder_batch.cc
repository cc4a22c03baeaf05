#include "engine/model/decoder_batch.h"

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "absl/strings/numbers.h"
#include "engine/model/cuda_kernels.h"
#include "engine/model/device_upload.h"

namespace speechllm::engine {

int64_t DecoderBatch::KernelTileRows(at::Device device, const AttentionFormat& format) {
  // Tiles of a whole chunk for the tensor-core kernel, unless the tile size is set (1 = no tiles,
  // 2 or 3 = smaller 4-row tiles).
  return TileRows() == kMaxTileRows && CudaTensorCoreTiles(device, format.dtype, format.head_dim)
             ? kMaxTensorCoreTileRows
             : TileRows();
}

void DecoderBatch::Prepare(int64_t block_size, at::Device device, AttentionFormat format) {
  std::vector<int64_t> position_values, slot_values;
  for (const DecoderSequence& sequence : sequences) {
    const int64_t end = sequence.start_position + sequence.num_new_tokens;
    TORCH_CHECK(static_cast<int64_t>(sequence.block_table.size()) * block_size >= end,
                "block table of ", sequence.block_table.size(), " blocks cannot hold ", end,
                " tokens");
    for (int64_t p = sequence.start_position; p < end; ++p) {
      position_values.push_back(p);
      slot_values.push_back(sequence.block_table[p / block_size] * block_size + p % block_size);
    }
  }
  num_tokens = static_cast<int64_t>(position_values.size());
  positions = UploadValues(position_values, device);
  slots = UploadValues(slot_values, device);
  in_padded_group.assign(sequences.size(), false);
  padded_batch = max_query = max_context = 0;
  in_kernel.assign(sequences.size(), false);
  kernel_num_rows = 0;
  kernel_num_tiles = kernel_num_single_rows = 0;
  std::vector<bool> eligible(sequences.size(), false);
  if (CudaKernelsEnabled(device)) {
    // The kernel's tiles and the mask's dtype follow the decoder's attention: a default format
    // here would quietly lose the tensor-core tiles.
    TORCH_CHECK(format.head_dim > 0, "DecoderBatch::Prepare on ", device,
                " needs the decoder's attention_format()");
    PrepareKernelRows(block_size, device, KernelTileRows(device, format));
    eligible = LongPrefillsToPad();
  } else {
    for (size_t b = 0; b < sequences.size(); ++b)
      eligible[b] = sequences[b].num_new_tokens <= kMaxBatchedQuery;
  }
  PreparePaddedGroup(block_size, device, format.dtype, eligible);
  // Block tables on the device only for the sequences that gather their keys one by one: on a GPU
  // each is a host-to-device copy, one per sequence and step otherwise.
  block_tables.assign(sequences.size(), at::Tensor());
  for (size_t b = 0; b < sequences.size(); ++b) {
    if (in_kernel[b] || in_padded_group[b]) continue;
    block_tables[b] = UploadValues(sequences[b].block_table, device);
  }
}

std::vector<bool> DecoderBatch::LongPrefillsToPad() const {
  std::vector<size_t> candidates;
  for (size_t b = 0; b < sequences.size(); ++b) {
    if (!in_kernel[b] && sequences[b].num_new_tokens > 0) candidates.push_back(b);
  }
  // Largest context last, so that the loop drops the sequences that pad the group most.
  auto context = [&](size_t b) {
    return sequences[b].start_position + sequences[b].num_new_tokens;
  };
  std::sort(candidates.begin(), candidates.end(),
            [&](size_t a, size_t b) { return context(a) < context(b); });
  while (candidates.size() >= 2) {
    int64_t padded_query = 0, padded_context = 0, work = 0;
    for (size_t b : candidates) {
      padded_query = std::max(padded_query, sequences[b].num_new_tokens);
      padded_context = std::max(padded_context, context(b));
      work += sequences[b].num_new_tokens * context(b);
    }
    const int64_t padded_work =
        static_cast<int64_t>(candidates.size()) * padded_query * padded_context;
    if (padded_work <= kMaxPaddingFactor * work) break;
    candidates.pop_back();
  }
  std::vector<bool> eligible(sequences.size(), false);
  if (candidates.size() >= 2) {
    for (size_t b : candidates) eligible[b] = true;
  }
  return eligible;
}

void DecoderBatch::PreparePaddedGroup(int64_t block_size, at::Device device,
                                      at::ScalarType mask_dtype,
                                      const std::vector<bool>& eligible) {
  int64_t group_size = 0;
  for (size_t b = 0; b < sequences.size(); ++b) group_size += eligible[b] && !in_kernel[b];
  if (sequences.size() <= 1 || group_size < 2) return;

  for (size_t b = 0; b < sequences.size(); ++b) {
    const DecoderSequence& s = sequences[b];
    if (!eligible[b] || in_kernel[b]) continue;
    in_padded_group[b] = true;
    ++padded_batch;
    max_query = std::max(max_query, s.num_new_tokens);
    max_context = std::max(max_context, s.start_position + s.num_new_tokens);
  }
  std::vector<int64_t> query_rows(padded_batch * max_query, 0), valid, rows;
  std::vector<int64_t> key_slot_values(padded_batch * max_context, 0);
  at::Tensor mask =
      at::full({padded_batch, 1, max_query, max_context}, -std::numeric_limits<float>::infinity(),
               at::TensorOptions().dtype(at::kFloat));
  float* m = mask.data_ptr<float>();
  int64_t row = 0, g = 0;
  for (size_t b = 0; b < sequences.size(); ++b) {
    const DecoderSequence& s = sequences[b];
    if (!in_padded_group[b]) {
      row += s.num_new_tokens;
      continue;
    }
    const int64_t context = s.start_position + s.num_new_tokens;
    for (int64_t j = 0; j < context; ++j) {
      key_slot_values[g * max_context + j] =
          s.block_table[j / block_size] * block_size + j % block_size;
    }
    for (int64_t i = 0; i < max_query; ++i) {
      float* mask_row = m + (g * max_query + i) * max_context;
      if (i < s.num_new_tokens) {
        query_rows[g * max_query + i] = row + i;
        valid.push_back(g * max_query + i);
        rows.push_back(row + i);
        std::fill(mask_row, mask_row + s.start_position + i + 1,
                  0.0f);  // causal: keys up to itself
      } else {
        mask_row[0] = 0.0f;  // padding rows see one key so that softmax stays finite; discarded
      }
    }
    row += s.num_new_tokens;
    ++g;
  }
  padded_query_rows = UploadValues(query_rows, device);
  padded_valid = UploadValues(valid, device);
  group_rows = UploadValues(rows, device);
  key_slots = UploadValues(key_slot_values, device);
  attention_mask = UploadTensor(mask, device, mask_dtype);
}

namespace {

// An integer in [1, limit] from the environment variable `name`, else `limit`.
int64_t LimitFromEnvironment(const char* name, int64_t limit) {
  const char* text = std::getenv(name);
  int64_t parsed = 0;
  if (text == nullptr || !absl::SimpleAtoi(text, &parsed) || parsed < 1 || parsed > limit) {
    return limit;
  }
  return parsed;
}

}  // namespace

int64_t DecoderBatch::MaxKernelQuery() {
  static const int64_t value = LimitFromEnvironment("SPEECHLLM_MAX_KERNEL_QUERY", kMaxKernelQuery);
  return value;
}

int64_t DecoderBatch::TileRows() {
  static const int64_t value = LimitFromEnvironment("SPEECHLLM_ATTENTION_TILE_ROWS", kMaxTileRows);
  return value;
}

void DecoderBatch::TileRowsOf(const std::vector<int32_t>& row_sequence, int64_t max_rows,
                              std::vector<int32_t>* first_row, std::vector<int32_t>* num_rows) {
  first_row->clear();
  num_rows->clear();
  for (size_t row = 0; row < row_sequence.size(); ++row) {
    const bool continues = !num_rows->empty() && num_rows->back() < max_rows &&
                           row_sequence[first_row->back()] == row_sequence[row];
    if (continues) {
      ++num_rows->back();
    } else {
      first_row->push_back(static_cast<int32_t>(row));
      num_rows->push_back(1);
    }
  }
}

std::vector<int32_t> DecoderBatch::KernelTiles(const std::vector<int32_t>& row_sequence,
                                               int64_t max_rows, int64_t* num_tiles,
                                               int64_t* num_single_rows) {
  std::vector<int32_t> first_row, num_rows;
  TileRowsOf(row_sequence, max_rows, &first_row, &num_rows);
  std::vector<int32_t> tile_first, tile_rows, singles;
  for (size_t t = 0; t < first_row.size(); ++t) {
    if (num_rows[t] >= 2) {
      tile_first.push_back(first_row[t]);
      tile_rows.push_back(num_rows[t]);
    } else {
      singles.push_back(first_row[t]);
    }
  }
  *num_tiles = static_cast<int64_t>(tile_first.size());
  *num_single_rows = tile_first.empty() ? 0 : static_cast<int64_t>(singles.size());
  if (tile_first.empty()) return {};
  tile_first.insert(tile_first.end(), tile_rows.begin(), tile_rows.end());
  tile_first.insert(tile_first.end(), singles.begin(), singles.end());
  return tile_first;
}

void DecoderBatch::PrepareKernelRows(int64_t block_size, at::Device device, int64_t tile_rows) {
  std::vector<int64_t> rows;
  std::vector<int32_t> row_sequence, row_position;
  std::vector<size_t> kernel_sequences;
  int64_t max_blocks = 1, row = 0;
  for (size_t b = 0; b < sequences.size(); ++b) {
    const DecoderSequence& s = sequences[b];
    if (s.num_new_tokens > 0 && s.num_new_tokens <= MaxKernelQuery()) {
      in_kernel[b] = true;
      const int32_t index = static_cast<int32_t>(kernel_sequences.size());
      kernel_sequences.push_back(b);
      max_blocks =
          std::max(max_blocks, (s.start_position + s.num_new_tokens + block_size - 1) / block_size);
      for (int64_t i = 0; i < s.num_new_tokens; ++i) {
        rows.push_back(row + i);
        row_sequence.push_back(index);
        row_position.push_back(static_cast<int32_t>(s.start_position + i));
      }
    }
    row += s.num_new_tokens;
  }
  kernel_num_rows = static_cast<int64_t>(rows.size());
  if (kernel_num_rows == 0) return;
  std::vector<int32_t> tables(kernel_sequences.size() * max_blocks, 0);
  for (size_t k = 0; k < kernel_sequences.size(); ++k) {
    const DecoderSequence& s = sequences[kernel_sequences[k]];
    const int64_t blocks = (s.start_position + s.num_new_tokens + block_size - 1) / block_size;
    for (int64_t j = 0; j < blocks; ++j)
      tables[k * max_blocks + j] = static_cast<int32_t>(s.block_table[j]);
  }
  const std::vector<int32_t> tiles =
      KernelTiles(row_sequence, tile_rows, &kernel_num_tiles, &kernel_num_single_rows);
  // The tallest tile: steps whose tiles all have at most kMaxTileRows rows keep the 4-row kernel.
  kernel_tile_rows = 0;
  for (int64_t t = 0; t < kernel_num_tiles; ++t) {
    kernel_tile_rows = std::max<int64_t>(kernel_tile_rows, tiles[kernel_num_tiles + t]);
  }
  if (kernel_num_tiles > 0) kernel_tiles = UploadValues(tiles, device);
  kernel_rows = UploadValues(rows, device);
  kernel_row_sequence = UploadValues(row_sequence, device);
  kernel_row_position = UploadValues(row_position, device);
  kernel_block_tables = UploadValues(tables, device)
                            .view({static_cast<int64_t>(kernel_sequences.size()), max_blocks});
}

}  // namespace speechllm::engine
