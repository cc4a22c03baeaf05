// AudioEncoder: the Qwen2-Audio (Whisper-large-v3 derived) audio tower of MODEL.md 2. Weights are
// immutable after Load; Forward methods are const and run on the thread that owns the model (the
// CUDA graphs of whole-segment passes, captured at the runner's start or at first use, are kept
// under a mutex).
#ifndef SPEECHLLM_ENGINE_MODEL_AUDIO_ENCODER_H_
#define SPEECHLLM_ENGINE_MODEL_AUDIO_ENCODER_H_

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/model/layers.h"
#include "engine/model/model_config.h"
#include "engine/model/weight_loader.h"

namespace speechllm::engine {

class EncoderGraphs;

// Keys and values of the encoder positions already computed in one segment (block mode): per layer
// [positions, d_model]. Owned by the runner's per-sequence state; engine loop thread only.
struct EncoderKvCache {
  std::vector<at::Tensor> keys, values;
  int64_t num_positions = 0;
};

// One item of a batched encoder pass: conv-stem output rows for positions [first_position,
// first_position + conv.size(0)) of one segment. With a cache (block mode) the rows also attend to
// the cached earlier positions and are appended to it; without one they attend only among
// themselves (full attention over a whole segment).
struct EncoderWork {
  at::Tensor conv;  // [positions, d_model], from ConvStemOf or ConvBlock
  int64_t first_position = 0;
  EncoderKvCache* cache = nullptr;
};

// One item of a batched conv stem (AudioEncoder::ConvStems): host log-mel frames, frame-major
// [num_frames][num_mel_bins], and which convolution they get. kSegment: transformers' padded
// convolutions over a whole segment (ConvStemOf); kFirstBlock / kLaterBlock: a block-mode block
// at / after the segment start (ConvBlock's frame windows: 2 * positions + 1 / + 3 frames).
struct ConvStemInput {
  enum class Kind { kSegment, kFirstBlock, kLaterBlock };
  Kind kind = Kind::kSegment;
  const float* frames = nullptr;
  int64_t num_frames = 0;
};

// How AudioEncoder::EncodeBatch runs a pass.
enum class EncoderPass {
  kDeviceDefault,  // kGraphs on CUDA, kPerItem on the CPU
  // Attention item by item (transformers' eager operations): few operations per item, but a GPU
  // pays their launches for every item.
  kPerItem,
  // Every operation batched over the items (EncoderBatchPlan; attention in padded products per
  // bucket of similar items): a fixed number of operations per layer whatever the item count.
  kBatched,
  // kBatched, but a pass whose items are all whole segments (no cache, first position 0: an
  // offline clip, exact finals) replays CUDA graphs of the padded segment instead (EncoderGraphs,
  // EncodePaddedSegment), where they are supported and SPEECHLLM_ENCODER_GRAPHS is not "0"; a
  // capture the runtime refuses turns them off for good (GraphsStatus() says why). At most
  // EncoderGraphs::kMaxSegmentsPerPass segments; more run batched.
  kGraphs,
};

// conv1 + GELU, conv2 (stride 2) + GELU, the stored position table, pre-LN transformer layers
// (k_proj without bias, additive key-padding mask), average pooling by 2 and the final LayerNorm.
class AudioEncoder {
 public:
  // Loads audio_tower.* (NOT_FOUND / INVALID_ARGUMENT naming the tensor on a missing or misshaped
  // one).
  static absl::StatusOr<std::unique_ptr<AudioEncoder>> Load(const WeightLoader& loader,
                                                            const AudioEncoderConfig& config);
  ~AudioEncoder();

  const AudioEncoderConfig& config() const { return config_; }

  // The Hugging Face computation: mel [batch, num_mel_bins, frames] (frames even, at most
  // 2 * max_source_positions; any float dtype, cast to the weights' dtype). Keys at conv positions
  // >= valid_conv_positions[b] are masked with -inf (pass frames/2 to mask nothing). Returns
  // [batch, frames / 4, d_model] after pooling and the final LayerNorm. When `hidden_states` is
  // given it receives HF's output_hidden_states: the input of every layer, then the final output.
  at::Tensor Forward(const at::Tensor& mel, const std::vector<int64_t>& valid_conv_positions,
                     std::vector<at::Tensor>* hidden_states = nullptr) const;

  // One clip without padding (MODEL.md 2.5): mel [num_mel_bins, frames] holding the valid frames
  // plus up to two more; only the first ConvOutputLength(num_valid_frames) positions are encoded,
  // with no mask. Returns [AudioTokenCount(num_valid_frames), d_model]; equals the valid rows of
  // Forward on the clip padded to 30 s. `hidden_states` entries are 2-D like the result. `pass` as
  // in EncodeBatch (benchmarks time the eager pass beside the graphs with it).
  at::Tensor EncodeValidPrefix(const at::Tensor& mel, int64_t num_valid_frames,
                               std::vector<at::Tensor>* hidden_states = nullptr,
                               EncoderPass pass = EncoderPass::kDeviceDefault) const;

  // Training (tools/train): mel [batch, num_mel_bins, frames] (frames even) through the conv stem
  // and the layers with `additive_mask` [batch, 1, positions, positions] (0 = attend, -inf = not;
  // key padding and the block-causal pattern of block mode both fit it). Returns [batch,
  // positions / 2, d_model]. Differentiable: the same code as Forward, with the mask given.
  // `hidden_states`, when given, receives every layer's input, then the output (as in Forward).
  at::Tensor ForwardWithMask(const at::Tensor& mel, const at::Tensor& additive_mask,
                             std::vector<at::Tensor>* hidden_states = nullptr) const {
    return Transformer(ConvStem(mel), additive_mask, hidden_states);
  }
  // Every weight under its checkpoint name (audio_tower.*), sharing storage with the module.
  std::vector<NamedTensor> Parameters() const;

  // Block mode (ARCHITECTURE 5): conv positions [first_position, end_position) of a segment from
  // mel [num_mel_bins, frames] holding frames 2*first_position - 2 .. 2*end_position (frames 0 ..
  // 2*end_position when first_position == 0, where the conv's zero padding is the left context).
  // Conv outputs equal the offline ones; each position attends to itself, its chunk and the cached
  // earlier positions, whose keys/values `cache` holds and receives. first_position must equal
  // cache->num_positions and be even. Returns [(end_position - first_position) / 2, d_model].
  at::Tensor EncodeBlock(const at::Tensor& mel, int64_t first_position, int64_t end_position,
                         EncoderKvCache* cache) const;
  // The conv stem part of EncodeBlock: [end_position - first_position, d_model], equal to rows
  // [first_position, end_position) of the offline conv stem output (before positions are added).
  at::Tensor ConvBlock(const at::Tensor& mel, int64_t first_position, int64_t end_position) const;
  // The transformer layers, pooling and final LayerNorm over several items at once: row-wise layers
  // run on all rows together, attention per item (items of one sequence in order, so later blocks
  // see earlier ones). Returns [rows / 2, d_model] per item. `hidden_states` (one item only)
  // receives the layer inputs and the output, as in Forward (and keeps a pass off the graphs).
  // `pass` picks how it runs (EncoderPass).
  std::vector<at::Tensor> EncodeBatch(const std::vector<EncoderWork>& work,
                                      std::vector<at::Tensor>* hidden_states = nullptr,
                                      EncoderPass pass = EncoderPass::kDeviceDefault) const;
  // The conv stems of many items at once on `device`, as two GEMMs over gathered frame windows
  // (im2col) instead of two convolutions per item: one upload, about ten operations in all, and
  // no per-shape convolution plans. Item i's result ([positions, d_model], a view of one tensor)
  // equals ConvStemOf / ConvBlock up to float summation order. Defined in conv_stems.cc.
  std::vector<at::Tensor> ConvStems(const std::vector<ConvStemInput>& inputs,
                                    at::Device device) const;
  // A whole segment padded to a graph bucket (EncoderGraphs): conv [padded positions, d_model]
  // whose first `num_valid_positions` rows (an int64 scalar tensor on conv's device, so that a
  // graph takes a new length at each replay) are the segment's conv stem rows, the rest finite
  // padding. Keys past the valid rows are masked, as Forward masks the 30 s window. Returns
  // [padded positions / 2, d_model]: the first num_valid / 2 rows equal EncodeBatch's for the
  // segment up to float summation order, the others are padding. No host synchronisation.
  at::Tensor EncodePaddedSegment(const at::Tensor& conv,
                                 const at::Tensor& num_valid_positions) const;
  // Captures every whole-segment graph now (EncoderGraphs::CaptureAll) instead of at first use, so
  // that no streaming step pays for a capture. OK, doing nothing, where the graphs are not
  // supported; INTERNAL, with the graphs off for good, when the runtime refuses a capture.
  absl::Status CaptureSegmentGraphs() const ABSL_LOCKS_EXCLUDED(graphs_mutex_);
  // OK while whole-segment passes may use CUDA graphs; the capture error once they are off.
  absl::Status GraphsStatus() const ABSL_LOCKS_EXCLUDED(graphs_mutex_);
  // The whole-segment graphs captured so far (one per length bucket).
  int64_t NumSegmentGraphs() const ABSL_LOCKS_EXCLUDED(graphs_mutex_);
  // The offline conv stem of one clip's features [num_mel_bins, frames] -> [positions, d_model].
  at::Tensor ConvStemOf(const at::Tensor& mel) const {
    return ConvStem(mel.unsqueeze(0)).squeeze(0);
  }

 private:
  struct Layer {
    LayerNorm self_attn_layer_norm;
    Linear q_proj, k_proj, v_proj, out_proj;  // q/k/v: views of qkv_proj
    LayerNorm final_layer_norm;
    Linear fc1, fc2;
    Linear qkv_proj;  // one product at inference (Decoder::Layer says why)
  };
  struct Qkv {
    at::Tensor q, k, v;  // [..., d_model] each, q not yet scaled
  };
  // The layer's projections of h [..., d_model]: one fused product, or with autograd on (the
  // trainer) one product per checkpoint tensor.
  static Qkv ProjectQkv(const Layer& layer, const at::Tensor& h);

  explicit AudioEncoder(const AudioEncoderConfig& config);
  // conv1 + GELU, conv2 + GELU -> [batch, conv positions, d_model].
  at::Tensor ConvStem(const at::Tensor& mel) const;
  // Positions, layers, pooling and LayerNorm over x [batch, positions, d_model].
  at::Tensor Transformer(at::Tensor x, const c10::optional<at::Tensor>& key_mask,
                         std::vector<at::Tensor>* hidden_states) const;
  at::Tensor SelfAttention(const Layer& layer, const at::Tensor& x,
                           const c10::optional<at::Tensor>& key_mask) const;
  // Consecutive row ranges of `rows` ([total, d]) of the given sizes, as views (one per item).
  static std::vector<at::Tensor> SplitRows(const at::Tensor& rows,
                                           const std::vector<int64_t>& sizes);
  // EncodeBatch with every operation batched over the items (EncoderBatchPlan): a fixed number of
  // operations per layer whatever the item count.
  std::vector<at::Tensor> EncodeBatchBatched(const std::vector<EncoderWork>& work,
                                             std::vector<at::Tensor>* hidden_states) const;
  // Attention of one item's queries q [positions, d_model] (already scaled) over its keys/values,
  // prefixed by the cached ones when `keys`/`values` are given (which are then extended).
  at::Tensor ItemAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           at::Tensor* keys, at::Tensor* values) const;
  // EncodeBatch through the whole-segment graphs; nothing when the pass does not qualify or the
  // graphs are off (the caller then runs the batched pass). This and the two below are defined in
  // encoder_graphs.cc, as are GraphsStatus, NumSegmentGraphs and CaptureSegmentGraphs.
  std::optional<std::vector<at::Tensor>> ReplaySegmentGraphs(
      const std::vector<EncoderWork>& work) const ABSL_LOCKS_EXCLUDED(graphs_mutex_);
  // Whether graphs can serve this encoder's passes on `device` (supported there, no autograd).
  bool GraphsApply(at::Device device) const;
  // Runs `use` on the graphs (created first if need be) under the mutex. A c10::Error from it turns
  // the graphs off for good and is returned, as is the error that turned them off earlier.
  absl::Status WithGraphs(const std::function<void(EncoderGraphs&)>& use) const
      ABSL_LOCKS_EXCLUDED(graphs_mutex_);

  AudioEncoderConfig config_;
  at::Tensor conv1_weight_, conv1_bias_, conv2_weight_, conv2_bias_;
  at::Tensor embed_positions_;  // [max_source_positions, d_model]
  std::vector<Layer> layers_;
  LayerNorm layer_norm_;
  mutable absl::Mutex graphs_mutex_;
  mutable std::unique_ptr<EncoderGraphs> graphs_ ABSL_GUARDED_BY(graphs_mutex_);
  mutable absl::Status graphs_status_ ABSL_GUARDED_BY(graphs_mutex_);
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_AUDIO_ENCODER_H_
