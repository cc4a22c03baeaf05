#include "engine/model/decoder_batch.h"

namespace speechllm::engine {

void DecoderBatch::Prepare(int64_t block_size, at::Device device) {
  std::vector<int64_t> position_values, slot_values;
  block_tables.clear();
  for (const DecoderSequence& sequence : sequences) {
    const int64_t end = sequence.start_position + sequence.num_new_tokens;
    TORCH_CHECK(static_cast<int64_t>(sequence.block_table.size()) * block_size >= end,
                "block table of ", sequence.block_table.size(), " blocks cannot hold ", end,
                " tokens");
    for (int64_t p = sequence.start_position; p < end; ++p) {
      position_values.push_back(p);
      slot_values.push_back(sequence.block_table[p / block_size] * block_size + p % block_size);
    }
    block_tables.push_back(
        at::tensor(sequence.block_table, at::TensorOptions().dtype(at::kLong)).to(device));
  }
  num_tokens = static_cast<int64_t>(position_values.size());
  positions = at::tensor(position_values, at::TensorOptions().dtype(at::kLong)).to(device);
  slots = at::tensor(slot_values, at::TensorOptions().dtype(at::kLong)).to(device);
}

}  // namespace speechllm::engine
