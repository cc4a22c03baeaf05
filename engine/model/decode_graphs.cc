#include "engine/model/decode_graphs.h"

#include <algorithm>
#include <cstring>
#include <exception>

#include "absl/strings/str_cat.h"
#include "engine/model/cuda_graph_capture.h"

#if SPEECHLLM_HAVE_CUDA_GRAPHS
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#endif

namespace speechllm::engine {

std::vector<int64_t> DecodeGraphBuckets(int64_t max_batch) {
  std::vector<int64_t> buckets;
  for (int64_t b = 1; b <= max_batch;) {
    buckets.push_back(b);
    b = b < 8 ? 2 * b : b < 64 ? b + 8 : b < 128 ? b + 16 : b + 32;
  }
  if (!buckets.empty() && buckets.back() != max_batch) buckets.push_back(max_batch);
  return buckets;
}

namespace {

// Whether `s` fits a graph row: one new token, and the blocks up to its position both in its block
// table and within the row's table width.
absl::Status CheckGraphRow(const DecoderSequence& s, int64_t table_width, int64_t block_size) {
  if (s.num_new_tokens != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("a decode graph row takes one new token, not ", s.num_new_tokens));
  }
  const int64_t num_blocks = s.start_position / block_size + 1;
  if (num_blocks > table_width || static_cast<int64_t>(s.block_table.size()) < num_blocks) {
    return absl::InvalidArgumentError(absl::StrCat(
        "position ", s.start_position, " needs ", num_blocks, " blocks; the table has ",
        s.block_table.size(), " and a graph row holds ", table_width));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status BuildDecodeGraphInputs(const std::vector<int64_t>& token_ids,
                                    const std::vector<DecoderSequence>& sequences, int64_t bucket,
                                    int64_t table_width, int64_t block_size, int64_t scratch_block,
                                    DecodeGraphInputs* inputs) {
  const int64_t num_sequences = static_cast<int64_t>(sequences.size());
  if (static_cast<int64_t>(token_ids.size()) != num_sequences) {
    return absl::InvalidArgumentError(
        absl::StrCat(token_ids.size(), " token ids for ", num_sequences, " decode sequences"));
  }
  if (num_sequences > bucket) {
    return absl::InvalidArgumentError(
        absl::StrCat(num_sequences, " sequences exceed the graph bucket of ", bucket));
  }
  inputs->longs.assign(3 * bucket, 0);
  inputs->ints.assign(2 * bucket + bucket * table_width, 0);
  int64_t* tokens = inputs->longs.data();
  int64_t* positions = tokens + bucket;
  int64_t* slots = positions + bucket;
  int32_t* row_sequence = inputs->ints.data();
  int32_t* row_position = row_sequence + bucket;
  int32_t* tables = row_position + bucket;
  for (int64_t r = 0; r < bucket; ++r) {
    row_sequence[r] = static_cast<int32_t>(r);
    int32_t* table = tables + r * table_width;
    if (r >= num_sequences) {  // padding: token 0 at position 0 in the scratch block
      slots[r] = scratch_block * block_size;
      table[0] = static_cast<int32_t>(scratch_block);
      continue;
    }
    const DecoderSequence& s = sequences[r];
    if (absl::Status fits = CheckGraphRow(s, table_width, block_size); !fits.ok()) return fits;
    const int64_t position = s.start_position;
    const int64_t num_blocks = position / block_size + 1;
    tokens[r] = token_ids[r];
    positions[r] = position;
    slots[r] = s.block_table[position / block_size] * block_size + position % block_size;
    row_position[r] = static_cast<int32_t>(position);
    for (int64_t j = 0; j < num_blocks; ++j) table[j] = static_cast<int32_t>(s.block_table[j]);
  }
  return absl::OkStatus();
}

struct DecodeGraphs::Runtime {
#if SPEECHLLM_HAVE_CUDA_GRAPHS
  GraphCapturer capturer;                // one pool and capture stream for every bucket
  at::Tensor pinned_longs, pinned_ints;  // staging for the largest bucket's inputs
  at::cuda::CUDAEvent staged;            // recorded after the copies out of the staging memory
#endif
};

struct DecodeGraphs::Graph {
  int64_t bucket = 0;
#if SPEECHLLM_HAVE_CUDA_GRAPHS
  CapturedGraph graph;
#endif
  at::Tensor longs, ints;  // the static inputs on the device (DecodeGraphInputs' layout)
  at::Tensor logits;       // the static output, [bucket, vocab_size]
};

bool DecodeGraphs::Supported(at::Device device) { return CudaGraphsEnabled(device); }

DecodeGraphs::DecodeGraphs(const Decoder* decoder, KvPool* kv, int64_t scratch_block,
                           int64_t table_width, int64_t max_batch)
    : decoder_(decoder),
      kv_(kv),
      scratch_block_(scratch_block),
      table_width_(std::max<int64_t>(table_width, 1)),
      buckets_(DecodeGraphBuckets(std::min(max_batch, kMaxBatch))),
      runtime_(std::make_unique<Runtime>()) {}

DecodeGraphs::~DecodeGraphs() = default;

bool DecodeGraphs::Accepts(const std::vector<DecoderSequence>& sequences) const {
  if (failed_ || sequences.empty() || static_cast<int64_t>(sequences.size()) > max_batch())
    return false;
  for (const DecoderSequence& s : sequences) {
    if (!CheckGraphRow(s, table_width_, kv_->block_size()).ok()) return false;
  }
  return true;
}

absl::Status DecodeGraphs::CaptureAll() {
  try {
    for (auto it = buckets_.rbegin(); it != buckets_.rend(); ++it) GraphFor(*it);
  } catch (const c10::Error& e) {
    failed_ = true;
    graphs_.clear();
    return absl::InternalError(
        absl::StrCat("capturing the decode graphs failed: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {  // std::bad_alloc from a pinned or graph-pool allocation
    failed_ = true;
    graphs_.clear();
    return absl::InternalError(absl::StrCat("capturing the decode graphs failed: ", e.what()));
  }
  return absl::OkStatus();
}

DecodeGraphs::Graph& DecodeGraphs::GraphFor(int64_t bucket) {
  auto it = graphs_.find(bucket);
  if (it == graphs_.end()) it = graphs_.emplace(bucket, Capture(bucket)).first;
  return *it->second;
}

std::unique_ptr<DecodeGraphs::Graph> DecodeGraphs::Capture(int64_t bucket) {
#if SPEECHLLM_HAVE_CUDA_GRAPHS
  const at::Device device = decoder_->device();
  const c10::cuda::CUDAGuard device_guard(device);
  auto g = std::make_unique<Graph>();
  g->bucket = bucket;
  // Padding in every row for the warm-up run, so that it writes the scratch block alone.
  DecodeGraphInputs idle;
  const absl::Status built = BuildDecodeGraphInputs({}, {}, bucket, table_width_, kv_->block_size(),
                                                    scratch_block_, &idle);
  TORCH_CHECK(built.ok(), built.ToString());
  g->longs = at::tensor(idle.longs, at::TensorOptions().dtype(at::kLong)).to(device);
  g->ints = at::tensor(idle.ints, at::TensorOptions().dtype(at::kInt)).to(device);
  if (!runtime_->pinned_longs.defined()) {
    const int64_t largest = buckets_.back();
    const auto pinned = at::TensorOptions().pinned_memory(true);
    runtime_->pinned_longs = at::empty({3 * largest}, pinned.dtype(at::kLong));
    runtime_->pinned_ints =
        at::empty({2 * largest + largest * table_width_}, pinned.dtype(at::kInt));
  }
  // The step's DecoderBatch over the static buffers: every row goes to the PagedAttention kernel.
  DecoderBatch batch;
  batch.num_tokens = batch.kernel_num_rows = bucket;
  batch.positions = g->longs.narrow(0, bucket, bucket);
  batch.slots = g->longs.narrow(0, 2 * bucket, bucket);
  batch.kernel_row_sequence = g->ints.narrow(0, 0, bucket);
  batch.kernel_row_position = g->ints.narrow(0, bucket, bucket);
  batch.kernel_block_tables =
      g->ints.narrow(0, 2 * bucket, bucket * table_width_).view({bucket, table_width_});
  const at::Tensor token_ids = g->longs.narrow(0, 0, bucket);
  runtime_->capturer.Capture(device, &g->graph, [&] {
    g->logits = decoder_->Logits(decoder_->Forward(decoder_->Embed(token_ids), batch, kv_));
  });
  return g;
#else
  TORCH_CHECK(false, "this build has no CUDA graphs (CUDA libtorch and SPEECHLLM_WITH_CUDA)");
#endif
}

at::Tensor DecodeGraphs::Run(const std::vector<int64_t>& token_ids,
                             const std::vector<DecoderSequence>& sequences) {
  // The rows are checked by BuildDecodeGraphInputs below; here only what picks the bucket.
  const int64_t num_sequences = static_cast<int64_t>(sequences.size());
  TORCH_CHECK(!failed_ && num_sequences >= 1 && num_sequences <= max_batch(),
              "decode graphs: ", num_sequences, " sequences do not fit a graph");
  decoder_->CheckPositions(sequences);  // a replay skips Decoder::Forward, which checks them
  const int64_t bucket = *std::lower_bound(buckets_.begin(), buckets_.end(), num_sequences);
  const absl::Status built = BuildDecodeGraphInputs(token_ids, sequences, bucket, table_width_,
                                                    kv_->block_size(), scratch_block_, &staging_);
  TORCH_CHECK(built.ok(), built.ToString());
  // A bucket CaptureAll did not capture (callers that skip it) is captured here; if that fails
  // the graphs are off, as after a failed CaptureAll, rather than retried at every step.
  Graph* captured = nullptr;
  try {
    captured = &GraphFor(bucket);
  } catch (...) {
    failed_ = true;
    graphs_.clear();
    throw;
  }
  Graph& g = *captured;
#if SPEECHLLM_HAVE_CUDA_GRAPHS
  const c10::cuda::CUDAGuard device_guard(decoder_->device());
  // The previous step's copies must have left the pinned memory before it is overwritten.
  runtime_->staged.synchronize();
  const int64_t num_longs = static_cast<int64_t>(staging_.longs.size());
  const int64_t num_ints = static_cast<int64_t>(staging_.ints.size());
  std::memcpy(runtime_->pinned_longs.data_ptr<int64_t>(), staging_.longs.data(),
              num_longs * sizeof(int64_t));
  std::memcpy(runtime_->pinned_ints.data_ptr<int32_t>(), staging_.ints.data(),
              num_ints * sizeof(int32_t));
  g.longs.copy_(runtime_->pinned_longs.narrow(0, 0, num_longs), /*non_blocking=*/true);
  g.ints.copy_(runtime_->pinned_ints.narrow(0, 0, num_ints), /*non_blocking=*/true);
  runtime_->staged.record();
  g.graph.replay();
#endif
  return g.logits.narrow(0, 0, num_sequences);
}

}  // namespace speechllm::engine
