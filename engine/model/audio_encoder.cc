#include "engine/model/audio_encoder.h"

#include <map>

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "engine/model/audio_lengths.h"
#include "engine/model/device_upload.h"
#include "engine/model/encoder_batch_plan.h"
#include "engine/model/encoder_graphs.h"  // complete for ~AudioEncoder
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
    layer.qkv_proj = FuseLinears({&layer.q_proj, &layer.k_proj, &layer.v_proj});
    encoder->layers_.push_back(std::move(layer));
  }
  SPEECHLLM_ASSIGN_OR_RETURN(encoder->layer_norm_,
                             LayerNorm::Load(loader, p + "layer_norm", d, config.layer_norm_eps));
  return encoder;
}

AudioEncoder::AudioEncoder(const AudioEncoderConfig& config) : config_(config) {}

AudioEncoder::~AudioEncoder() = default;

AudioEncoder::Qkv AudioEncoder::ProjectQkv(const Layer& layer, const at::Tensor& h) {
  const std::vector<at::Tensor> parts =
      ForwardFused(layer.qkv_proj, {&layer.q_proj, &layer.k_proj, &layer.v_proj}, h);
  return {parts[0], parts[1], parts[2]};
}

std::vector<NamedTensor> AudioEncoder::Parameters() const {
  const std::string p = "audio_tower.";
  std::vector<NamedTensor> out = {{p + "conv1.weight", conv1_weight_},
                                  {p + "conv1.bias", conv1_bias_},
                                  {p + "conv2.weight", conv2_weight_},
                                  {p + "conv2.bias", conv2_bias_},
                                  {p + "embed_positions.weight", embed_positions_}};
  for (size_t i = 0; i < layers_.size(); ++i) {
    const std::string l = absl::StrCat(p, "layers.", i, ".");
    const Layer& layer = layers_[i];
    layer.self_attn_layer_norm.AppendTo(l + "self_attn_layer_norm", &out);
    layer.q_proj.AppendTo(l + "self_attn.q_proj", &out);
    layer.k_proj.AppendTo(l + "self_attn.k_proj", &out);
    layer.v_proj.AppendTo(l + "self_attn.v_proj", &out);
    layer.out_proj.AppendTo(l + "self_attn.out_proj", &out);
    layer.final_layer_norm.AppendTo(l + "final_layer_norm", &out);
    layer.fc1.AppendTo(l + "fc1", &out);
    layer.fc2.AppendTo(l + "fc2", &out);
  }
  layer_norm_.AppendTo(p + "layer_norm", &out);
  return out;
}

at::Tensor AudioEncoder::ConvStem(const at::Tensor& mel) const {
  const at::Tensor input = mel.to(conv1_weight_.scalar_type());
  at::Tensor x =
      at::gelu(at::conv1d(input, conv1_weight_, conv1_bias_, /*stride=*/1, /*padding=*/1));
  x = at::conv1d(x, conv2_weight_, conv2_bias_, /*stride=*/2, /*padding=*/1);
  // [batch, positions, d_model]. The GELU comes after the transpose so that the conv's backward
  // gets a gradient in its own layout: libtorch 1.13's CPU conv1d backward returns garbage (often
  // inf) weight gradients for a transposed (non-contiguous) output gradient, and in training that
  // garbage dominated the clipped gradient norm of every step (docs/training.md). Same values.
  return at::gelu(x.transpose(1, 2));
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
  const Qkv projected = ProjectQkv(layer, x);
  const at::Tensor q = split(projected.q * scaling);
  const at::Tensor k = split(projected.k);
  const at::Tensor v = split(projected.v);
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
    x = ClampFloat16Overflow(
        x + layer.fc2.Forward(at::gelu(layer.fc1.Forward(layer.final_layer_norm.Forward(x)))));
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
    const at::Tensor lengths = UploadValues(valid_conv_positions, x.device()).unsqueeze(1);
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
                                           std::vector<at::Tensor>* hidden_states,
                                           EncoderPass pass) const {
  const int64_t conv_positions = ConvOutputLength(num_valid_frames);
  TORCH_CHECK(AudioTokenCount(num_valid_frames) > 0, "too few frames for one audio token");
  TORCH_CHECK(mel.dim() == 2 && mel.size(1) >= std::min<int64_t>(num_valid_frames,
                                                                 2 * config_.max_source_positions),
              "EncodeValidPrefix needs [num_mel_bins, frames] with at least the valid frames");
  EncoderWork work;
  work.conv = ConvStemOf(mel).narrow(0, 0, conv_positions);
  return EncodeBatch({work}, hidden_states, pass)[0];
}

at::Tensor AudioEncoder::ItemAttention(const at::Tensor& q, const at::Tensor& k,
                                       const at::Tensor& v, at::Tensor* keys,
                                       at::Tensor* values) const {
  const int64_t tokens = q.size(0);
  const int64_t heads = config_.num_heads, head_dim = config_.head_dim();
  at::Tensor all_keys = k, all_values = v;
  if (keys != nullptr) {
    // contiguous(): k and v are columns of the fused q/k/v product, which the cache must not pin.
    *keys = keys->defined() ? at::cat({*keys, k}, 0) : k.contiguous();
    *values = values->defined() ? at::cat({*values, v}, 0) : v.contiguous();
    all_keys = *keys;
    all_values = *values;
  }
  const int64_t context = all_keys.size(0);
  const at::Tensor qh = q.view({tokens, heads, head_dim}).transpose(0, 1);
  const at::Tensor kh = all_keys.view({context, heads, head_dim}).transpose(0, 1);
  const at::Tensor vh = all_values.view({context, heads, head_dim}).transpose(0, 1);
  // As transformers' eager path: softmax in the activation dtype.
  const at::Tensor probs = at::softmax(at::matmul(qh, kh.transpose(-1, -2)), -1);
  return at::matmul(probs, vh).transpose(0, 1).reshape({tokens, heads * head_dim});
}

std::vector<at::Tensor> AudioEncoder::EncodeBatch(const std::vector<EncoderWork>& work,
                                                  std::vector<at::Tensor>* hidden_states,
                                                  EncoderPass pass) const {
  TORCH_CHECK(!work.empty(), "an encoder pass needs at least one item");
  TORCH_CHECK(hidden_states == nullptr || work.size() == 1,
              "hidden states are traced for one item only");
  std::vector<int64_t> offsets;
  int64_t total = 0;
  std::map<const EncoderKvCache*, int64_t>
      next_position;  // blocks of one sequence follow each other
  for (const EncoderWork& item : work) {
    const int64_t positions = item.conv.size(0);
    TORCH_CHECK(positions > 0 && item.first_position + positions <= config_.max_source_positions,
                "encoder rows [", item.first_position, ", ", item.first_position + positions,
                ") out of range");
    if (item.cache != nullptr) {
      auto [it, inserted] = next_position.emplace(item.cache, item.cache->num_positions);
      TORCH_CHECK(it->second == item.first_position, "encoder cache holds ", it->second,
                  " positions, block starts at ", item.first_position);
      it->second += positions;
    }
    if (item.cache != nullptr) {
      item.cache->keys.resize(layers_.size());
      item.cache->values.resize(layers_.size());
    }
    offsets.push_back(total);
    total += positions;
  }
  const at::Device device = work[0].conv.device();
  if (pass == EncoderPass::kDeviceDefault) {
    pass = device.is_cuda() ? EncoderPass::kGraphs : EncoderPass::kPerItem;
  }
  if (pass != EncoderPass::kPerItem) {
    if (pass == EncoderPass::kGraphs && hidden_states == nullptr) {
      std::optional<std::vector<at::Tensor>> replayed = ReplaySegmentGraphs(work);
      if (replayed.has_value()) return *std::move(replayed);
    }
    return EncodeBatchBatched(work, hidden_states);
  }
  std::vector<at::Tensor> rows;
  for (const EncoderWork& item : work) {
    rows.push_back(item.conv + embed_positions_.narrow(0, item.first_position, item.conv.size(0)));
  }
  at::Tensor x = rows.size() == 1 ? rows[0] : at::cat(rows, 0);
  const double scaling = 1.0 / std::sqrt(static_cast<double>(config_.head_dim()));
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    if (hidden_states != nullptr) hidden_states->push_back(x);
    const at::Tensor h = layer.self_attn_layer_norm.Forward(x);
    // As transformers' eager path: the query (bias included) is scaled before the product.
    const Qkv projected = ProjectQkv(layer, h);
    const at::Tensor q = projected.q * scaling;
    const at::Tensor& k = projected.k;
    const at::Tensor& v = projected.v;
    std::vector<at::Tensor> contexts;
    for (size_t i = 0; i < work.size(); ++i) {
      const int64_t n = work[i].conv.size(0);
      EncoderKvCache* cache = work[i].cache;
      contexts.push_back(ItemAttention(q.narrow(0, offsets[i], n), k.narrow(0, offsets[i], n),
                                       v.narrow(0, offsets[i], n),
                                       cache != nullptr ? &cache->keys[l] : nullptr,
                                       cache != nullptr ? &cache->values[l] : nullptr));
    }
    x = x + layer.out_proj.Forward(contexts.size() == 1 ? contexts[0] : at::cat(contexts, 0));
    x = ClampFloat16Overflow(
        x + layer.fc2.Forward(at::gelu(layer.fc1.Forward(layer.final_layer_norm.Forward(x)))));
  }
  std::vector<at::Tensor> pooled;
  std::vector<int64_t> pooled_sizes;
  for (size_t i = 0; i < work.size(); ++i) {
    const int64_t n = work[i].conv.size(0);
    if (work[i].cache != nullptr) work[i].cache->num_positions = work[i].first_position + n;
    // Average of position pairs (2t, 2t+1); an odd last position is dropped, as AvgPool1d does. A
    // block of one position (the end of a segment) pools to no rows, which AvgPool1d rejects.
    pooled.push_back(
        n < 2 ? x.new_empty({0, x.size(1)})
              : at::avg_pool1d(x.narrow(0, offsets[i], n).transpose(0, 1).unsqueeze(0), {2}, {2})
                    .squeeze(0)
                    .transpose(0, 1));
    pooled_sizes.push_back(n / 2);
  }
  const at::Tensor normed =
      layer_norm_.Forward(pooled.size() == 1 ? pooled[0] : at::cat(pooled, 0));
  if (hidden_states != nullptr) hidden_states->push_back(normed);
  return SplitRows(normed, pooled_sizes);
}

std::vector<at::Tensor> AudioEncoder::EncodeBatchBatched(
    const std::vector<EncoderWork>& work, std::vector<at::Tensor>* hidden_states) const {
  EncoderBatchPlan plan(work, work[0].conv.device());
  at::Tensor x = plan.Input(work, embed_positions_);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    if (hidden_states != nullptr) hidden_states->push_back(x);
    const at::Tensor h = layer.self_attn_layer_norm.Forward(x);
    const Qkv projected = ProjectQkv(layer, h);
    x = x + layer.out_proj.Forward(
                plan.Attend(projected.q, projected.k, projected.v, l, config_.num_heads));
    x = ClampFloat16Overflow(
        x + layer.fc2.Forward(at::gelu(layer.fc1.Forward(layer.final_layer_norm.Forward(x)))));
  }
  for (const EncoderWork& item : work) {
    if (item.cache != nullptr) item.cache->num_positions = item.first_position + item.conv.size(0);
  }
  const at::Tensor normed = layer_norm_.Forward(plan.Pool(x));
  if (hidden_states != nullptr) hidden_states->push_back(normed);
  return SplitRows(normed, plan.pooled_rows());
}

at::Tensor AudioEncoder::EncodePaddedSegment(const at::Tensor& conv,
                                             const at::Tensor& num_valid_positions) const {
  const int64_t positions = conv.size(0);
  const at::Tensor padding =
      at::arange(positions, num_valid_positions.options()) >= num_valid_positions;
  const at::Tensor key_mask =
      at::zeros({1, 1, 1, positions}, conv.options())
          .masked_fill(padding.view({1, 1, 1, positions}), -std::numeric_limits<float>::infinity());
  return Transformer(conv.unsqueeze(0), key_mask, nullptr).squeeze(0);
}

std::vector<at::Tensor> AudioEncoder::SplitRows(const at::Tensor& rows,
                                                const std::vector<int64_t>& sizes) {
  std::vector<at::Tensor> out;
  int64_t row = 0;
  for (int64_t size : sizes) {
    out.push_back(rows.narrow(0, row, size));
    row += size;
  }
  return out;
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
  EncoderWork work;
  work.conv = ConvBlock(mel, first_position, end_position);
  work.first_position = first_position;
  work.cache = cache;
  return EncodeBatch({work})[0];
}

}  // namespace speechllm::engine
