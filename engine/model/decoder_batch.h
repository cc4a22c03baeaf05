// DecoderBatch: how the rows of one flattened decoder input belong to sequences: for each sequence
// its new tokens (consecutive rows, in order), the number of tokens already in its KV cache, and
// its block table in the KvPool. Prepare() derives the device tensors (positions, KV slots, block
// tables). Built and consumed on the thread that runs the model.
#ifndef SPEECHLLM_ENGINE_MODEL_DECODER_BATCH_H_
#define SPEECHLLM_ENGINE_MODEL_DECODER_BATCH_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace speechllm::engine {

struct DecoderSequence {
  int64_t num_new_tokens = 0;
  int64_t start_position =
      0;  // tokens of this sequence already cached (= position of the first new one)
  std::vector<int64_t>
      block_table;  // KvPool blocks covering positions [0, start_position + num_new_tokens)
};

struct DecoderBatch {
  std::vector<DecoderSequence> sequences;

  // Filled by Prepare().
  at::Tensor positions;                  // int64 [total new tokens]
  at::Tensor slots;                      // int64 [total new tokens]: block * block_size + offset
  std::vector<at::Tensor> block_tables;  // int64 [blocks] per sequence
  int64_t num_tokens = 0;

  // Derives the tensors on `device`. The block tables must be long enough (checked).
  void Prepare(int64_t block_size, at::Device device);
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_DECODER_BATCH_H_
