#include "engine/model/audio_encoder.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/model/audio_lengths.h"
#include "engine/status_macros.h"

namespace speechllm::engine {

absl::StatusOr<std::unique_ptr<AudioEncoder>> AudioEncoder::Load(const WeightLoader& loader,
                                                                 const AudioEncoderConfig& config) {
  std::unique_ptr<AudioEncoder> encoder(new AudioEncoder(config));
  const int64_t d = config.d_model;
  const std::string p = "audio_tower.";
  SPEECHLLM_ASSIGN_OR_RETURN(encoder->conv1_weight_,
                             loader.Load(p + "conv1.weight", {d, config.num_mel_bins, 3}));
  SPEECHLLM_ASSIGN_OR_RETURN(encoder->conv1_bias_, loader.Load(p + "conv1.bias", {d}));
  SPEECHLLM_ASSIGN_OR_RETURN(encoder->conv2_weight_, loader.Load(p + "conv2.weight", {d, d, 3}));
  SPEECHLLM_ASSIGN_OR_RETURN(encoder->conv2_bias_, loader.Load(p + "conv2.bias", {d}));
  SPEECHLLM_ASSIGN_OR_RETURN(
      encoder->embed_positions_,
      loader.Load(p + "embed_positions.weight", {config.max_source_positions, d}));
  for (int i = 0; i < config.num_layers; ++i) {
    const std::string l = absl::StrCat(p, "layers.", i, ".");
    Layer layer;
    SPEECHLLM_ASSIGN_OR_RETURN(
        layer.self_attn_layer_norm,
        LayerNorm::Load(loader, l + "self_attn_layer_norm", d, config.layer_norm_eps));
    SPEECHLLM_ASSIGN_OR_RETURN(layer.q_proj,
                               Linear::Load(loader, l + "self_attn.q_proj", d, d, true));
    SPEECHLLM_ASSIGN_OR_RETURN(layer.k_proj,
                               Linear::Load(loader, l + "self_attn.k_proj", d, d, false));
    SPEECHLLM_ASSIGN_OR_RETURN(layer.v_proj,
                               Linear::Load(loader, l + "self_attn.v_proj", d, d, true));
    SPEECHLLM_ASSIGN_OR_RETURN(layer.out_proj,
                               Linear::Load(loader, l + "self_attn.out_proj", d, d, true));
    SPEECHLLM_ASSIGN_OR_RETURN(
        layer.final_layer_norm,
        LayerNorm::Load(loader, l + "final_layer_norm", d, config.layer_norm_eps));
    SPEECHLLM_ASSIGN_OR_RETURN(layer.fc1, Linear::Load(loader, l + "fc1", d, config.ffn_dim, true));
    SPEECHLLM_ASSIGN_OR_RETURN(layer.fc2, Linear::Load(loader, l + "fc2", config.ffn_dim, d, true));
    encoder->layers_.push_back(std::move(layer));
  }
  SPEECHLLM_ASSIGN_OR_RETURN(encoder->layer_norm_,
                             LayerNorm::Load(loader, p + "layer_norm", d, config.layer_norm_eps));
  return encoder;
}

at::Tensor AudioEncoder::ConvStem(const at::Tensor& mel) const {
  const at::Tensor input = mel.to(conv1_weight_.scalar_type());
  at::Tensor x =
      at::gelu(at::conv1d(input, conv1_weight_, conv1_bias_, /*stride=*/1, /*padding=*/1));
  x = at::gelu(at::conv1d(x, conv2_weight_, conv2_bias_, /*stride=*/2, /*padding=*/1));
  return x.transpose(1, 2);  // [batch, positions, d_model]
}

at::Tensor AudioEncoder::SelfAttention(const Layer& layer, const at::Tensor& x,
                                       const c10::optional<at::Tensor>& key_mask) const {
  const int64_t batch = x.size(0), tokens = x.size(1);
  const int64_t heads = config_.num_heads, head_dim = config_.head_dim();
  const double scaling = 1.0 / std::sqrt(static_cast<double>(head_dim));
  auto split = [&](const at::Tensor& t) {
    return t.view({batch, tokens, heads, head_dim}).transpose(1, 2);
  };
  // As transformers' eager path: the query (bias included) is scaled before the product.
  const at::Tensor q = split(layer.q_proj.Forward(x) * scaling);
  const at::Tensor k = split(layer.k_proj.Forward(x));
  const at::Tensor v = split(layer.v_proj.Forward(x));
  at::Tensor scores = at::matmul(q, k.transpose(-1, -2));  // [batch, heads, tokens, tokens]
  if (key_mask.has_value()) scores = scores + *key_mask;
  const at::Tensor probs = at::softmax(scores, -1);
  const at::Tensor context =
      at::matmul(probs, v).transpose(1, 2).reshape({batch, tokens, heads * head_dim});
  return layer.out_proj.Forward(context);
}

at::Tensor AudioEncoder::Transformer(at::Tensor x, const c10::optional<at::Tensor>& key_mask,
                                     std::vector<at::Tensor>* hidden_states) const {
  x = x + embed_positions_.narrow(0, 0, x.size(1));
  for (const Layer& layer : layers_) {
    if (hidden_states != nullptr) hidden_states->push_back(x);
    x = x + SelfAttention(layer, layer.self_attn_layer_norm.Forward(x), key_mask);
    x = x + layer.fc2.Forward(at::gelu(layer.fc1.Forward(layer.final_layer_norm.Forward(x))));
  }
  x = at::avg_pool1d(x.transpose(1, 2), /*kernel_size=*/{2}, /*stride=*/{2}).transpose(1, 2);
  x = layer_norm_.Forward(x);
  if (hidden_states != nullptr) hidden_states->push_back(x);
  return x;
}

at::Tensor AudioEncoder::Forward(const at::Tensor& mel,
                                 const std::vector<int64_t>& valid_conv_positions,
                                 std::vector<at::Tensor>* hidden_states) const {
  const at::Tensor x = ConvStem(mel);
  const int64_t batch = x.size(0), positions = x.size(1);
  TORCH_CHECK(positions <= config_.max_source_positions, "encoder input of ", positions,
              " positions exceeds max_source_positions");
  TORCH_CHECK(static_cast<int64_t>(valid_conv_positions.size()) == batch,
              "one valid length per batch row");
  c10::optional<at::Tensor> key_mask;
  bool any_padding = false;
  for (int64_t valid : valid_conv_positions) any_padding |= valid < positions;
  if (any_padding) {
    const at::Tensor lengths =
        at::tensor(valid_conv_positions, at::TensorOptions().dtype(at::kLong))
            .to(x.device())
            .unsqueeze(1);
    const at::Tensor padded =
        at::arange(positions, lengths.options()).unsqueeze(0) >= lengths;  // [batch, pos]
    at::Tensor additive = at::zeros({batch, 1, 1, positions}, x.options());
    additive.masked_fill_(padded.view({batch, 1, 1, positions}),
                          -std::numeric_limits<float>::infinity());
    key_mask = additive;
  }
  return Transformer(x, key_mask, hidden_states);
}

at::Tensor AudioEncoder::EncodeValidPrefix(const at::Tensor& mel, int64_t num_valid_frames,
                                           std::vector<at::Tensor>* hidden_states) const {
  const int64_t conv_positions = ConvOutputLength(num_valid_frames);
  TORCH_CHECK(AudioTokenCount(num_valid_frames) > 0, "too few frames for one audio token");
  TORCH_CHECK(mel.dim() == 2 && mel.size(1) >= std::min<int64_t>(num_valid_frames,
                                                                 2 * config_.max_source_positions),
              "EncodeValidPrefix needs [num_mel_bins, frames] with at least the valid frames");
  const at::Tensor x = ConvStem(mel.unsqueeze(0)).narrow(1, 0, conv_positions);
  const size_t first_state = hidden_states != nullptr ? hidden_states->size() : 0;
  const at::Tensor out = Transformer(x, c10::nullopt, hidden_states).squeeze(0);
  if (hidden_states != nullptr) {
    for (size_t i = first_state; i < hidden_states->size(); ++i)
      (*hidden_states)[i] = (*hidden_states)[i].squeeze(0);
  }
  return out;
}

at::Tensor AudioEncoder::CachedSelfAttention(const Layer& layer, const at::Tensor& x,
                                             at::Tensor* keys, at::Tensor* values) const {
  const int64_t tokens = x.size(0);
  const int64_t heads = config_.num_heads, head_dim = config_.head_dim();
  const double scaling = 1.0 / std::sqrt(static_cast<double>(head_dim));
  const at::Tensor new_keys = layer.k_proj.Forward(x);
  const at::Tensor new_values = layer.v_proj.Forward(x);
  *keys = keys->defined() ? at::cat({*keys, new_keys}, 0) : new_keys;
  *values = values->defined() ? at::cat({*values, new_values}, 0) : new_values;
  const int64_t context = keys->size(0);
  const at::Tensor q =
      (layer.q_proj.Forward(x) * scaling).view({tokens, heads, head_dim}).transpose(0, 1);
  const at::Tensor k = keys->view({context, heads, head_dim}).transpose(0, 1);
  const at::Tensor v = values->view({context, heads, head_dim}).transpose(0, 1);
  const at::Tensor probs = at::softmax(at::matmul(q, k.transpose(-1, -2)), -1);
  return layer.out_proj.Forward(
      at::matmul(probs, v).transpose(0, 1).reshape({tokens, heads * head_dim}));
}

at::Tensor AudioEncoder::ConvBlock(const at::Tensor& mel, int64_t first_position,
                                   int64_t end_position) const {
  const int64_t positions = end_position - first_position;
  TORCH_CHECK(
      positions > 0 && first_position % 2 == 0 && end_position <= config_.max_source_positions,
      "bad encoder block [", first_position, ", ", end_position, ")");
  const bool first = first_position == 0;
  TORCH_CHECK(mel.dim() == 2 && mel.size(1) == 2 * positions + (first ? 1 : 3), "block of ",
              positions, " positions needs ", 2 * positions + (first ? 1 : 3), " frames, got ",
              mel.sizes());
  // Valid (unpadded) convolutions over the context frames; at the segment start the zero padding of
  // conv1's input and of conv2's input stands in for the missing left context, as offline.
  at::Tensor input = mel.to(conv1_weight_.scalar_type()).unsqueeze(0);
  if (first) input = at::constant_pad_nd(input, {1, 0});
  at::Tensor x = at::gelu(at::conv1d(input, conv1_weight_, conv1_bias_));
  if (first) x = at::constant_pad_nd(x, {1, 0});
  x = at::gelu(at::conv1d(x, conv2_weight_, conv2_bias_, /*stride=*/2));
  return x.squeeze(0).transpose(0, 1);
}

at::Tensor AudioEncoder::EncodeBlock(const at::Tensor& mel, int64_t first_position,
                                     int64_t end_position, EncoderKvCache* cache) const {
  TORCH_CHECK(cache->num_positions == first_position, "encoder cache holds ", cache->num_positions,
              " positions, block starts at ", first_position);
  const int64_t positions = end_position - first_position;
  at::Tensor x = ConvBlock(mel, first_position, end_position) +
                 embed_positions_.narrow(0, first_position, positions);
  cache->keys.resize(layers_.size());
  cache->values.resize(layers_.size());
  for (size_t i = 0; i < layers_.size(); ++i) {
    const Layer& layer = layers_[i];
    x = x + CachedSelfAttention(layer, layer.self_attn_layer_norm.Forward(x), &cache->keys[i],
                                &cache->values[i]);
    x = x + layer.fc2.Forward(at::gelu(layer.fc1.Forward(layer.final_layer_norm.Forward(x))));
  }
  cache->num_positions = end_position;
  x = at::avg_pool1d(x.transpose(0, 1).unsqueeze(0), /*kernel_size=*/{2}, /*stride=*/{2})
          .squeeze(0)
          .transpose(0, 1);
  return layer_norm_.Forward(x);
}

}  // namespace speechllm::engine
