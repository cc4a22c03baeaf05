// DecodeGraphs: CUDA graphs of the decoder's decode step (one new token for each of B sequences:
// embedding, every layer with the PagedAttention kernel, final norm, lm_head), captured once per
// batch-size bucket and replayed with the step's token ids, positions, KV slots and block tables
// copied into the graph's static input buffers. Rows past the real batch are padding that write to
// and read only a scratch KV block. Owned by the model runner; the thread that runs the model only.
#ifndef SPEECHLLM_ENGINE_MODEL_DECODE_GRAPHS_H_
#define SPEECHLLM_ENGINE_MODEL_DECODE_GRAPHS_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/model/decoder.h"
#include "engine/model/decoder_batch.h"
#include "engine/model/kv_pool.h"

namespace speechllm::engine {

// The batch sizes that get a graph, ascending, up to and including max_batch: 1, 2, 4, 8, then
// every multiple of 8 to 64, of 16 to 128 and of 32 beyond (a step runs in the smallest bucket
// that holds it, so padding stays under ~25 % past 8 sequences).
std::vector<int64_t> DecodeGraphBuckets(int64_t max_batch);

// The host side of one replay: the step's rows padded to `bucket`. Row r < sequences is sequence
// r's decode token; padding rows hold token 0 at position 0, written to the first slot of
// `scratch_block`, whose block table is that block alone.
struct DecodeGraphInputs {
  std::vector<int64_t> longs;  // [3 * bucket]: token ids, positions, KV slots
  std::vector<int32_t> ints;   // [2 * bucket + bucket * table_width]: row -> block-table row,
                               // row positions, block tables (table_width entries per row)
};
// INVALID_ARGUMENT when a sequence has other than one new token, its blocks exceed table_width or
// the block table is too short, or the sequences exceed the bucket.
absl::Status BuildDecodeGraphInputs(const std::vector<int64_t>& token_ids,
                                    const std::vector<DecoderSequence>& sequences, int64_t bucket,
                                    int64_t table_width, int64_t block_size, int64_t scratch_block,
                                    DecodeGraphInputs* inputs);

class DecodeGraphs {
 public:
  // The largest bucket: each graph keeps its logits buffer ([bucket, vocab_size]; the buckets up to
  // 256 hold ~1,500 rows in all, ~0.5 GB for Qwen2-Audio-7B's vocabulary in bfloat16), and larger
  // decode batches are weight-read bound enough that launches matter less.
  static constexpr int64_t kMaxBatch = 256;

  // True when this build has CUDA graph support (the CUDA libtorch and the project's kernels),
  // the kernels are on for `device` (CudaKernelsEnabled) and SPEECHLLM_CUDA_GRAPHS is not "0".
  static bool Supported(at::Device device);

  // `kv` block `scratch_block` is reserved for the padding rows (the caller never hands it out).
  // Block tables up to `table_width` blocks fit a graph; longer sequences run eagerly. Buckets go
  // up to min(max_batch, kMaxBatch).
  DecodeGraphs(const Decoder* decoder, KvPool* kv, int64_t scratch_block, int64_t table_width,
               int64_t max_batch);
  ~DecodeGraphs();
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;

  // Captures every bucket's graph now (largest first, sharing one memory pool) instead of at first
  // use. An error (a capture the CUDA runtime refused) leaves the object unusable: Accepts() is
  // false from then on and the caller runs eagerly.
  absl::Status CaptureAll();

  // Whether a step of these sequences can replay a graph: each has one new token, they fit the
  // largest bucket and their block tables the table width.
  bool Accepts(const std::vector<DecoderSequence>& sequences) const;

  // Runs the decode step of `token_ids` (one per sequence) and returns the logits [sequences,
  // vocab_size] in the model dtype, a view of the graph's output buffer that the next Run
  // overwrites. Captures the bucket's graph first if needed. Requires Accepts(sequences).
  at::Tensor Run(const std::vector<int64_t>& token_ids,
                 const std::vector<DecoderSequence>& sequences);

  int64_t num_graphs() const { return static_cast<int64_t>(graphs_.size()); }
  int64_t max_batch() const { return buckets_.empty() ? 0 : buckets_.back(); }

 private:
  struct Graph;    // the captured graph with its static buffers (decode_graphs.cc)
  struct Runtime;  // the CUDA side: memory pool, staging memory (decode_graphs.cc)

  Graph& GraphFor(int64_t bucket);
  std::unique_ptr<Graph> Capture(int64_t bucket);

  const Decoder* decoder_;
  KvPool* kv_;
  int64_t scratch_block_, table_width_;
  std::vector<int64_t> buckets_;
  bool failed_ = false;
  std::unique_ptr<Runtime> runtime_;
  std::map<int64_t, std::unique_ptr<Graph>> graphs_;  // by bucket
  DecodeGraphInputs staging_;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_DECODE_GRAPHS_H_
