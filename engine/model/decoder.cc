#include "engine/model/decoder.h"

#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/model/causal_attention.h"
#include "engine/model/cuda_kernels.h"
#include "engine/status_macros.h"

namespace speechllm::engine {

Decoder::Decoder(const TextConfig& config, at::ScalarType dtype, at::Device device)
    : config_(config),
      rotary_(config.head_dim, config.rope_theta, config.max_position_embeddings, dtype, device) {}

absl::StatusOr<std::unique_ptr<Decoder>> Decoder::Load(const WeightLoader& loader,
                                                       const TextConfig& config) {
  std::unique_ptr<Decoder> decoder(new Decoder(config, loader.dtype(), loader.device()));
  const int64_t hidden = config.hidden_size;
  const int64_t q_dim = static_cast<int64_t>(config.num_heads) * config.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(config.num_kv_heads) * config.head_dim;
  const std::string p = "language_model.model.";
  SPEECHLLM_ASSIGN_OR_RETURN(decoder->embed_tokens_,
                             loader.Load(p + "embed_tokens.weight", {config.vocab_size, hidden}));
  for (int i = 0; i < config.num_layers; ++i) {
    const std::string l = absl::StrCat(p, "layers.", i, ".");
    Layer layer;
    SPEECHLLM_ASSIGN_OR_RETURN(
        layer.input_layernorm,
        RmsNorm::Load(loader, l + "input_layernorm.weight", hidden, config.rms_norm_eps));
    SPEECHLLM_ASSIGN_OR_RETURN(
        layer.post_attention_layernorm,
        RmsNorm::Load(loader, l + "post_attention_layernorm.weight", hidden, config.rms_norm_eps));
    SPEECHLLM_ASSIGN_OR_RETURN(layer.q_proj,
                               Linear::Load(loader, l + "self_attn.q_proj", hidden, q_dim, true));
    SPEECHLLM_ASSIGN_OR_RETURN(layer.k_proj,
                               Linear::Load(loader, l + "self_attn.k_proj", hidden, kv_dim, true));
    SPEECHLLM_ASSIGN_OR_RETURN(layer.v_proj,
                               Linear::Load(loader, l + "self_attn.v_proj", hidden, kv_dim, true));
    SPEECHLLM_ASSIGN_OR_RETURN(layer.o_proj,
                               Linear::Load(loader, l + "self_attn.o_proj", q_dim, hidden, false));
    SPEECHLLM_ASSIGN_OR_RETURN(layer.gate_proj, Linear::Load(loader, l + "mlp.gate_proj", hidden,
                                                             config.intermediate_size, false));
    SPEECHLLM_ASSIGN_OR_RETURN(layer.up_proj, Linear::Load(loader, l + "mlp.up_proj", hidden,
                                                           config.intermediate_size, false));
    SPEECHLLM_ASSIGN_OR_RETURN(
        layer.down_proj,
        Linear::Load(loader, l + "mlp.down_proj", config.intermediate_size, hidden, false));
    layer.qkv_proj = FuseLinears({&layer.q_proj, &layer.k_proj, &layer.v_proj});
    layer.gate_up_proj = FuseLinears({&layer.gate_proj, &layer.up_proj});
    decoder->layers_.push_back(std::move(layer));
  }
  SPEECHLLM_ASSIGN_OR_RETURN(decoder->norm_,
                             RmsNorm::Load(loader, p + "norm.weight", hidden, config.rms_norm_eps));
  // Tied, the head is the embedding whatever the checkpoint stores, as HF's tie_weights() makes it
  // after loading (a stored lm_head.weight is left unused there).
  if (config.tie_word_embeddings) {
    decoder->lm_head_.weight = decoder->embed_tokens_;
  } else {
    SPEECHLLM_ASSIGN_OR_RETURN(decoder->lm_head_, Linear::Load(loader, "language_model.lm_head",
                                                               hidden, config.vocab_size, false));
  }
  // The products a decode step runs (the fused ones, not their checkpoint views).
  std::vector<Linear*> step_linears = {&decoder->lm_head_};
  for (Layer& layer : decoder->layers_) {
    step_linears.insert(step_linears.end(),
                        {&layer.qkv_proj, &layer.o_proj, &layer.gate_up_proj, &layer.down_proj});
  }
  SPEECHLLM_ASSIGN_OR_RETURN(decoder->skinny_tuning_, TuneSkinnyLinears(step_linears));
  return decoder;
}

Decoder::Qkv Decoder::ProjectQkv(const Layer& layer, const at::Tensor& x,
                                 const at::Tensor& positions) const {
  const int64_t tokens = x.size(0);
  // At inference column blocks of one product: rows q_dim + 2 kv_dim apart.
  const std::vector<at::Tensor> parts =
      ForwardFused(layer.qkv_proj, {&layer.q_proj, &layer.k_proj, &layer.v_proj}, x);
  const at::Tensor q = parts[0].view({tokens, config_.num_heads, config_.head_dim});
  const at::Tensor k = parts[1].view({tokens, config_.num_kv_heads, config_.head_dim});
  const at::Tensor v = parts[2].view({tokens, config_.num_kv_heads, config_.head_dim});
  return {rotary_.Apply(q, positions), rotary_.Apply(k, positions), v};
}

at::Tensor Decoder::Mlp(const Layer& layer, const at::Tensor& h) const {
  const std::vector<at::Tensor> parts =
      ForwardFused(layer.gate_up_proj, {&layer.gate_proj, &layer.up_proj}, h);
  const at::Tensor& gate = parts[0];
  const at::Tensor& up = parts[1];
  return layer.down_proj.Forward(CudaKernelsEnabled(h.device()) ? CudaSwiGlu(gate, up)
                                                                : at::silu(gate) * up);
}

at::Tensor Decoder::SequenceAttention(int layer_index, const DecoderBatch& batch, size_t s,
                                      const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                      const KvPool* kv) const {
  const DecoderSequence& sequence = batch.sequences[s];
  // A sequence with nothing cached attends over its own new keys, which are the values just
  // written to the pool: no gather (and, on CUDA, a plain causal product).
  if (sequence.start_position == 0) return CausalAttention(q, k, v, 0);
  auto [keys, values] = kv->Gather(layer_index, batch.block_tables[s],
                                   sequence.start_position + sequence.num_new_tokens);
  return CausalAttention(q, keys, values, sequence.start_position);
}

at::Tensor Decoder::Attention(int layer_index, const Layer& layer, const at::Tensor& x,
                              const DecoderBatch& batch, KvPool* kv) const {
  const int64_t tokens = x.size(0);
  // Rows outside the PagedAttention kernel attend over this step's k and v directly.
  const bool all_rows_in_kernel = tokens > 0 && batch.kernel_num_rows == tokens;
  at::Tensor q, k, v;
  if (CudaKernelsEnabled(x.device())) {
    // One launch rotates q and k and writes k and v into the pool (CudaRotaryQkvToPool).
    const at::Tensor product = layer.qkv_proj.Forward(x);
    const int64_t kv_columns = config_.num_kv_heads * config_.head_dim;
    std::tie(q, k) =
        CudaRotaryQkvToPool(product, config_.num_heads, config_.num_kv_heads, batch.positions,
                            batch.slots, rotary_.cos(), rotary_.sin(), kv->keys(layer_index),
                            kv->values(layer_index), !all_rows_in_kernel);
    v = product.narrow(-1, product.size(-1) - kv_columns, kv_columns)
            .view({tokens, config_.num_kv_heads, config_.head_dim});
  } else {
    Qkv projected = ProjectQkv(layer, x, batch.positions);
    q = std::move(projected.q);
    k = std::move(projected.k);
    v = std::move(projected.v);
    kv->Write(layer_index, batch.slots, k, v);
  }

  at::Tensor context;
  if (all_rows_in_kernel) {  // CUDA: all rows in one PagedAttention
    context = CudaPagedAttention(q, kv->keys(layer_index), kv->values(layer_index), batch,
                                 kv->block_size());
  } else if (batch.sequences.size() == 1) {
    context = SequenceAttention(layer_index, batch, 0, q, k, v, kv);
  } else {
    context = at::empty({tokens, config_.num_heads * config_.head_dim}, q.options());
    if (batch.kernel_num_rows > 0) {
      context.index_copy_(
          0, batch.kernel_rows,
          CudaPagedAttention(q.index_select(0, batch.kernel_rows), kv->keys(layer_index),
                             kv->values(layer_index), batch, kv->block_size()));
    }
    if (batch.padded_batch > 0) {
      // Short queries of several sequences (or, on CUDA, long prefills) in one padded product over
      // keys gathered through their block tables.
      const int64_t b = batch.padded_batch;
      const at::Tensor padded_q =
          q.index_select(0, batch.padded_query_rows)
              .view({b, batch.max_query, config_.num_heads, config_.head_dim});
      auto [keys, values] = kv->GatherSlots(layer_index, batch.key_slots);
      const std::vector<int64_t> kv_shape = {b, batch.max_context, config_.num_kv_heads,
                                             config_.head_dim};
      const at::Tensor out = PaddedCausalAttention(padded_q, keys.view(kv_shape),
                                                   values.view(kv_shape), batch.attention_mask);
      context.index_copy_(0, batch.group_rows, out.index_select(0, batch.padded_valid));
    }
    int64_t row = 0;
    for (size_t s = 0; s < batch.sequences.size(); ++s) {
      const DecoderSequence& sequence = batch.sequences[s];
      const int64_t n = sequence.num_new_tokens;
      if (!batch.in_padded_group[s] && !batch.in_kernel[s]) {
        context.narrow(0, row, n).copy_(SequenceAttention(layer_index, batch, s,
                                                          q.narrow(0, row, n), k.narrow(0, row, n),
                                                          v.narrow(0, row, n), kv));
      }
      row += n;
    }
  }
  return layer.o_proj.Forward(context);
}

void Decoder::CheckPositions(const std::vector<DecoderSequence>& sequences) const {
  for (const DecoderSequence& s : sequences) {
    TORCH_CHECK(s.start_position >= 0 &&
                    s.start_position + s.num_new_tokens <= config_.max_position_embeddings,
                "positions ", s.start_position, " to ", s.start_position + s.num_new_tokens - 1,
                " are outside max_position_embeddings ", config_.max_position_embeddings);
  }
}

at::Tensor Decoder::Forward(const at::Tensor& hidden, const DecoderBatch& batch, KvPool* kv,
                            std::vector<at::Tensor>* hidden_states) const {
  TORCH_CHECK(hidden.size(0) == batch.num_tokens, "hidden rows ", hidden.size(0),
              " != batch tokens ", batch.num_tokens);
  CheckPositions(batch.sequences);
  // Each residual add goes with the norm after it (the next layer's input norm, or the final
  // norm): one launch for both on CUDA.
  at::Tensor x = hidden;
  at::Tensor normed = layers_.empty() ? norm_.Forward(x) : layers_[0].input_layernorm.Forward(x);
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    if (hidden_states != nullptr) hidden_states->push_back(x);
    auto [after_attention, mlp_input] = layer.post_attention_layernorm.AddAndForward(
        x, Attention(static_cast<int>(i), layer, normed, batch, kv));
    const RmsNorm& next_norm = i + 1 < layers_.size() ? layers_[i + 1].input_layernorm : norm_;
    std::tie(x, normed) = next_norm.AddAndForward(after_attention, Mlp(layer, mlp_input));
  }
  if (hidden_states != nullptr) hidden_states->push_back(normed);
  return normed;
}

at::Tensor Decoder::ForwardDense(const at::Tensor& hidden, const at::Tensor& additive_mask) const {
  const int64_t batch = hidden.size(0), tokens = hidden.size(1);
  TORCH_CHECK(tokens <= config_.max_position_embeddings, "a dense batch of ", tokens,
              " tokens is longer than max_position_embeddings ", config_.max_position_embeddings);
  const at::Tensor positions =
      at::arange(tokens, at::TensorOptions().dtype(at::kLong).device(hidden.device()))
          .repeat({batch});
  at::Tensor x = hidden.reshape({batch * tokens, config_.hidden_size});
  for (const Layer& layer : layers_) {
    auto [q, k, v] = ProjectQkv(layer, layer.input_layernorm.Forward(x), positions);
    const at::Tensor context = PaddedCausalAttention(
        q.view({batch, tokens, config_.num_heads, config_.head_dim}),
        k.view({batch, tokens, config_.num_kv_heads, config_.head_dim}),
        v.view({batch, tokens, config_.num_kv_heads, config_.head_dim}), additive_mask);
    x = x + layer.o_proj.Forward(context);
    x = x + Mlp(layer, layer.post_attention_layernorm.Forward(x));
  }
  return norm_.Forward(x).view({batch, tokens, config_.hidden_size});
}

std::vector<NamedTensor> Decoder::Parameters() const {
  const std::string p = "language_model.model.";
  std::vector<NamedTensor> out = {{p + "embed_tokens.weight", embed_tokens_}};
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::string l = absl::StrCat(p, "layers.", i, ".");
    const Layer& layer = layers_[i];
    out.push_back({l + "input_layernorm.weight", layer.input_layernorm.weight});
    out.push_back({l + "post_attention_layernorm.weight", layer.post_attention_layernorm.weight});
    layer.q_proj.AppendTo(l + "self_attn.q_proj", &out);
    layer.k_proj.AppendTo(l + "self_attn.k_proj", &out);
    layer.v_proj.AppendTo(l + "self_attn.v_proj", &out);
    layer.o_proj.AppendTo(l + "self_attn.o_proj", &out);
    layer.gate_proj.AppendTo(l + "mlp.gate_proj", &out);
    layer.up_proj.AppendTo(l + "mlp.up_proj", &out);
    layer.down_proj.AppendTo(l + "mlp.down_proj", &out);
  }
  out.push_back({p + "norm.weight", norm_.weight});
  if (!lm_head_.weight.is_same(embed_tokens_))
    out.push_back({"language_model.lm_head.weight", lm_head_.weight});
  return out;
}

}  // namespace speechllm::engine
