// Decoder: the Qwen2 language model of Qwen2-Audio (MODEL.md 4): token embeddings, pre-RMSNorm
// layers with RoPE and multi-head or grouped-query attention (q/k/v bias, no o_proj bias), SwiGLU
// MLP, final RMSNorm and an untied lm_head. Runs a flattened batch of new tokens of many sequences
// against the paged KvPool. Weights are immutable after Load; Forward writes only the pool; model
// thread only.
#ifndef SPEECHLLM_ENGINE_MODEL_DECODER_H_
#define SPEECHLLM_ENGINE_MODEL_DECODER_H_

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/decoder_batch.h"
#include "engine/model/kv_pool.h"
#include "engine/model/layers.h"
#include "engine/model/linear_tuning.h"
#include "engine/model/model_config.h"

namespace speechllm::engine {

class Decoder {
 public:
  static absl::StatusOr<std::unique_ptr<Decoder>> Load(const WeightLoader& loader,
                                                       const TextConfig& config);

  const TextConfig& config() const { return config_; }
  at::ScalarType dtype() const { return embed_tokens_.scalar_type(); }
  at::Device device() const { return embed_tokens_.device(); }
  // What DecoderBatch::Prepare needs to know of this decoder's attention.
  AttentionFormat attention_format() const { return {dtype(), config_.head_dim}; }

  // Embedding rows of int64 token ids [tokens] -> [tokens, hidden_size].
  at::Tensor Embed(const at::Tensor& token_ids) const {
    return embed_tokens_.index_select(0, token_ids);
  }

  // Throws unless every sequence's new positions lie within the rotary tables
  // (max_position_embeddings), which the CUDA kernels read unchecked. Forward calls it; so does a
  // decode-graph replay, which skips Forward.
  void CheckPositions(const std::vector<DecoderSequence>& sequences) const;

  // Runs every layer over `hidden` [batch.num_tokens, hidden_size] (rows grouped by sequence as in
  // `batch`, which must be Prepare()d), writing the new keys/values into `kv`. Returns the final
  // RMSNorm output. `hidden_states`, when given, receives transformers' output_hidden_states: the
  // input of every layer, then the normed output.
  at::Tensor Forward(const at::Tensor& hidden, const DecoderBatch& batch, KvPool* kv,
                     std::vector<at::Tensor>* hidden_states = nullptr) const;

  // Training (tools/train): every layer over whole padded sequences `hidden` [batch, tokens,
  // hidden_size] at positions 0 .. tokens - 1, with `additive_mask` [batch, 1, tokens, tokens]
  // (causal and key padding; 0 = attend, -inf = not). No KV cache. Returns the final RMSNorm
  // output [batch, tokens, hidden_size]. The same layers and attention as Forward, differentiable.
  at::Tensor ForwardDense(const at::Tensor& hidden, const at::Tensor& additive_mask) const;

  // Every weight under its checkpoint name (language_model.model.*, language_model.lm_head.weight;
  // the lm_head is left out when tied to the embeddings), sharing storage with the module.
  std::vector<NamedTensor> Parameters() const;

  // Benchmarks only (decoder_step_parts.cc): device microseconds per step of each part of a step
  // over `batch` (Prepare()d, every row in the PagedAttention kernel; CUDA with the project's
  // kernels): each part timed alone (engine/cuda/stream_timer.h), every call on the next layer's
  // weights and KV, times the layer count; then the final norm, lm_head and argmax. Writes the
  // batch's KV rows of every layer.
  std::vector<std::pair<std::string, double>> TimeStepParts(const at::Tensor& hidden,
                                                            const DecoderBatch& batch, KvPool* kv,
                                                            int reps) const;

  // What Load's skinny-GEMM choice timed on CUDA (linear_tuning.h; empty elsewhere or when
  // SPEECHLLM_SKINNY_GEMM fixed the choice).
  const SkinnyTuning& skinny_tuning() const { return skinny_tuning_; }

  // lm_head: [rows, hidden_size] -> [rows, vocab_size] in the model dtype.
  at::Tensor Logits(const at::Tensor& normed_hidden) const {
    return lm_head_.Forward(normed_hidden);
  }

 private:
  struct Layer {
    RmsNorm input_layernorm, post_attention_layernorm;
    // The checkpoint's projections; q/k/v and gate/up are views of the fused products below.
    Linear q_proj, k_proj, v_proj, o_proj;
    Linear gate_proj, up_proj, down_proj;
    // Inference runs q/k/v as one product and gate/up as one: fewer, larger GEMMs (at batch 1 the
    // small k/v products cost a launch each for a few microseconds of reading). With autograd on
    // (the trainer), the projections run one by one so that each view gets its own gradient.
    Linear qkv_proj, gate_up_proj;
  };

  struct Qkv {
    at::Tensor q, k, v;  // [tokens, heads, head_dim], q and k rotated
  };

  Decoder(const TextConfig& config, at::ScalarType dtype, at::Device device);
  // The projections and RoPE of `x` [tokens, hidden_size] at `positions` (int64 [tokens]).
  Qkv ProjectQkv(const Layer& layer, const at::Tensor& x, const at::Tensor& positions) const;
  // The MLP residual branch of the post-attention-normed `h`.
  at::Tensor Mlp(const Layer& layer, const at::Tensor& h) const;
  at::Tensor Attention(int layer_index, const Layer& layer, const at::Tensor& x,
                       const DecoderBatch& batch, KvPool* kv) const;
  // Attention of sequence `s` alone (its rows q, k, v [new tokens, heads, head_dim], k and v
  // already in the pool) over its cached and new keys.
  at::Tensor SequenceAttention(int layer_index, const DecoderBatch& batch, size_t s,
                               const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               const KvPool* kv) const;

  TextConfig config_;
  RotaryEmbedding rotary_;
  at::Tensor embed_tokens_;  // [vocab_size, hidden_size]
  std::vector<Layer> layers_;
  RmsNorm norm_;
  Linear lm_head_;
  SkinnyTuning skinny_tuning_;
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_DECODER_H_
