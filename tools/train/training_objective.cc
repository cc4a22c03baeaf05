#include "tools/train/training_objective.h"

#include <algorithm>
#include <limits>
#include <memory>

#include <ATen/core/grad_mode.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/model/audio_lengths.h"
#include "engine/model/safetensors.h"
#include "engine/model/weight_loader.h"
#include "tools/train/checkpoint_writer.h"

namespace speechllm::tools {
namespace {

// Tensor names of HeadParameters() in the head file, in the same order.
constexpr const char* kHeadNames[] = {"ctc.weight", "ctc.bias"};

at::Tensor LongTensor(const std::vector<int64_t>& values) {
  return at::tensor(values, at::TensorOptions().dtype(at::kLong));
}

}  // namespace

std::vector<int64_t> CharacterTargets(const std::string& text) {
  std::vector<int64_t> out;
  for (char c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c >= 'a' && c <= 'z') {
      out.push_back(c - 'a');
    } else if (c >= '0' && c <= '9') {
      out.push_back(26 + (c - '0'));
    } else if (c == ' ') {
      out.push_back(36);
    } else if (c == '\'') {
      out.push_back(37);
    } else if (c == ':') {
      out.push_back(38);
    }
  }
  return out;
}

TrainingObjective::TrainingObjective(const engine::Qwen2AudioModel* model,
                                     std::vector<int64_t> prefix_ids,
                                     std::vector<int64_t> suffix_ids, int64_t end_id,
                                     ObjectiveOptions options, uint64_t seed)
    : model_(model),
      prefix_ids_(std::move(prefix_ids)),
      suffix_ids_(std::move(suffix_ids)),
      end_id_(end_id),
      options_(options) {
  const int64_t classes =
      (options.ctc_characters ? kCharacterClasses : model->config().text.vocab_size) + 1;
  at::Generator generator = at::globalContext().defaultGenerator(at::kCPU);
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_current_seed(seed);
  }
  ctc_weight_ = at::normal(0.0, 0.02, {classes, model->config().audio.d_model}, generator,
                           at::TensorOptions().dtype(at::kFloat))
                    .to(model->device(), model->dtype())
                    .set_requires_grad(true);
  ctc_bias_ =
      at::zeros({classes}, at::TensorOptions().dtype(model->dtype()).device(model->device()))
          .set_requires_grad(true);
}

absl::Status TrainingObjective::SaveHead(const std::string& checkpoint_dir) const {
  engine::SafetensorsWriter writer;
  const std::vector<at::Tensor> head = HeadParameters();
  for (size_t i = 0; i < head.size(); ++i) {
    if (absl::Status s = AddFloat32Tensor(kHeadNames[i], head[i], &writer); !s.ok()) return s;
  }
  writer.SetMetadata("ctc_characters", options_.ctc_characters ? "true" : "false");
  return writer.WriteFile(absl::StrCat(checkpoint_dir, "/", kHeadFile));
}

absl::Status TrainingObjective::LoadHead(const std::string& checkpoint_dir) {
  const std::string path = absl::StrCat(checkpoint_dir, "/", kHeadFile);
  absl::StatusOr<std::unique_ptr<engine::SafetensorsFile>> file =
      engine::SafetensorsFile::Open(path);  // NOT_FOUND when absent
  if (!file.ok()) return file.status();
  // Every shape is checked before any value is replaced.
  const std::vector<at::Tensor> head = HeadParameters();
  std::vector<at::Tensor> loaded;
  for (size_t i = 0; i < head.size(); ++i) {
    absl::StatusOr<engine::TensorView> view = (*file)->Get(kHeadNames[i]);
    if (!view.ok()) return view.status();
    if (view->shape != head[i].sizes().vec()) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": ", kHeadNames[i], " is ",
                                                     view->ShapeString(), ", this head's is [",
                                                     absl::StrJoin(head[i].sizes(), ", "), "]"));
    }
    loaded.push_back(engine::TensorFromView(*view));
  }
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < head.size(); ++i) head[i].copy_(loaded[i]);
  return absl::OkStatus();
}

at::Tensor TrainingObjective::EncoderMask(const std::vector<int64_t>& valid_positions,
                                          int64_t positions,
                                          const std::vector<int64_t>& block_positions) const {
  const at::Tensor index = at::arange(positions, at::TensorOptions().dtype(at::kLong));
  std::vector<at::Tensor> masks;
  for (size_t b = 0; b < valid_positions.size(); ++b) {
    at::Tensor allowed = (index < valid_positions[b]).unsqueeze(0).expand({positions, positions});
    if (block_positions[b] > 0) {
      const at::Tensor block = at::floor_divide(index, block_positions[b]);
      allowed = allowed.logical_and(block.unsqueeze(0) <= block.unsqueeze(1));  // [query, key]
    }
    masks.push_back(
        at::zeros({positions, positions}, at::TensorOptions().dtype(at::kFloat))
            .masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity()));
  }
  return at::stack(masks).unsqueeze(1).to(model_->device(), model_->dtype());
}

Losses TrainingObjective::Compute(const std::vector<TrainingExample>& batch, std::mt19937_64* rng,
                                  double full_attention_fraction_override) const {
  const engine::ModelConfig& config = model_->config();
  const int64_t batch_size = static_cast<int64_t>(batch.size());
  const double full_fraction = full_attention_fraction_override >= 0
                                   ? full_attention_fraction_override
                                   : options_.full_attention_fraction;
  // Features: each clip's valid prefix (as inference computes it), zero-padded to a multiple of
  // 4 frames so that the conv stem and pooling see whole pairs.
  std::vector<engine::LogMelFeatures> features;
  int64_t max_frames = 0;
  for (const TrainingExample& example : batch) {
    auto extracted = model_->log_mel().ExtractValidPrefix(example.samples);
    TORCH_CHECK(extracted.ok(), extracted.status().ToString());
    max_frames = std::max(max_frames, extracted->num_frames);
    features.push_back(*std::move(extracted));
  }
  max_frames = (max_frames + 3) / 4 * 4;
  at::Tensor mel = at::zeros({batch_size, config.audio.num_mel_bins, max_frames});
  std::vector<int64_t> valid_positions, audio_tokens, block_positions;
  std::uniform_real_distribution<double> unit(0, 1);
  std::uniform_int_distribution<int64_t> block_pairs(options_.min_block_positions / 2,
                                                     options_.max_block_positions / 2);
  for (int64_t b = 0; b < batch_size; ++b) {
    const engine::LogMelFeatures& f = features[b];
    mel[b]
        .narrow(1, 0, f.num_frames)
        .copy_(at::from_blob(const_cast<float*>(f.values.data()), {f.num_mel_bins, f.num_frames},
                             at::TensorOptions().dtype(at::kFloat)));
    valid_positions.push_back(engine::ConvOutputLength(f.num_valid_frames));
    audio_tokens.push_back(engine::AudioTokenCount(f.num_valid_frames));
    block_positions.push_back(unit(*rng) < full_fraction ? 0 : 2 * block_pairs(*rng));
  }
  std::vector<at::Tensor> encoder_states;
  const at::Tensor encoded = model_->encoder().ForwardWithMask(
      mel.to(model_->device()), EncoderMask(valid_positions, max_frames / 2, block_positions),
      options_.ctc_characters ? &encoder_states : nullptr);
  Losses losses;
  if (options_.ctc_only) {
    losses.total = at::zeros({}, encoded.options());
    AddCtcLoss(batch, encoded, encoder_states, valid_positions, audio_tokens, &losses);
    return losses;
  }
  const double g = options_.decoder_to_encoder_gradient;
  const at::Tensor to_decoder =
      g >= 1 ? encoded : encoded.detach() + g * (encoded - encoded.detach());
  const at::Tensor projected = model_->projector().Forward(to_decoder);

  // Decoder inputs: prefix, the clip's audio rows, suffix, transcript, end token.
  const engine::Decoder& decoder = model_->decoder();
  const at::Device device = model_->device();
  const at::Tensor prefix = decoder.Embed(LongTensor(prefix_ids_).to(device));
  std::vector<at::Tensor> rows;
  std::vector<int64_t> lengths, label_rows, labels;
  int64_t max_length = 0;
  for (int64_t b = 0; b < batch_size; ++b) {
    std::vector<int64_t> tail = suffix_ids_;
    tail.insert(tail.end(), batch[b].target_ids.begin(), batch[b].target_ids.end());
    tail.push_back(end_id_);
    rows.push_back(at::cat({prefix, projected[b].narrow(0, 0, audio_tokens[b]),
                            decoder.Embed(LongTensor(tail).to(device))}));
    const int64_t length = rows.back().size(0);
    lengths.push_back(length);
    max_length = std::max(max_length, length);
    const int64_t first_label = length - static_cast<int64_t>(batch[b].target_ids.size()) - 1;
    for (int64_t t = first_label; t < length; ++t) {
      labels.push_back(tail[tail.size() - (length - t)]);
      label_rows.push_back(t - 1);  // row t - 1 predicts token t
    }
  }
  std::vector<at::Tensor> padded;
  size_t next_label = 0;
  for (int64_t b = 0; b < batch_size; ++b) {
    padded.push_back(at::constant_pad_nd(rows[b], {0, 0, 0, max_length - lengths[b]}));
    // Label rows of example b, as offsets in the flattened [batch * max_length] output.
    const size_t count = batch[b].target_ids.size() + 1;
    for (size_t i = 0; i < count; ++i) label_rows[next_label++] += b * max_length;
  }
  const at::Tensor index = at::arange(max_length, at::TensorOptions().dtype(at::kLong));
  const at::Tensor causal = index.unsqueeze(0) <= index.unsqueeze(1);  // [query, key]
  std::vector<at::Tensor> masks;
  for (int64_t b = 0; b < batch_size; ++b) {
    const at::Tensor allowed = causal.logical_and((index < lengths[b]).unsqueeze(0));
    masks.push_back(
        at::zeros({max_length, max_length})
            .masked_fill(allowed.logical_not(), -std::numeric_limits<float>::infinity()));
  }
  const at::Tensor hidden = decoder.ForwardDense(
      at::stack(padded), at::stack(masks).unsqueeze(1).to(device, model_->dtype()));
  const at::Tensor logits = decoder.Logits(hidden.reshape({-1, config.text.hidden_size})
                                               .index_select(0, LongTensor(label_rows).to(device)));
  const at::Tensor label_tensor = LongTensor(labels).to(device);
  const at::Tensor cross_entropy = at::cross_entropy_loss(logits, label_tensor);

  losses.cross_entropy = cross_entropy.item<double>();
  losses.num_tokens = static_cast<int64_t>(labels.size());
  losses.num_correct = logits.argmax(-1).eq(label_tensor).sum().item<int64_t>();
  losses.total = cross_entropy;
  AddCtcLoss(batch, encoded, encoder_states, valid_positions, audio_tokens, &losses);
  return losses;
}

void TrainingObjective::AddCtcLoss(const std::vector<TrainingExample>& batch,
                                   const at::Tensor& encoded,
                                   const std::vector<at::Tensor>& encoder_states,
                                   const std::vector<int64_t>& valid_positions,
                                   const std::vector<int64_t>& audio_tokens, Losses* losses) const {
  if (options_.ctc_weight <= 0) return;
  const at::Device device = model_->device();
  std::vector<int64_t> ctc_targets, ctc_target_lengths;
  for (const TrainingExample& example : batch) {
    const std::vector<int64_t> ctc_target =
        options_.ctc_characters ? CharacterTargets(example.text) : example.target_ids;
    ctc_targets.insert(ctc_targets.end(), ctc_target.begin(), ctc_target.end());
    ctc_target_lengths.push_back(static_cast<int64_t>(ctc_target.size()));
  }
  // Characters: the last layer's input (50 Hz), normalised; tokens: the encoder output (25 Hz).
  const at::Tensor states =
      options_.ctc_characters
          ? at::layer_norm(encoder_states[encoder_states.size() - 2], {encoded.size(-1)})
          : encoded;
  const std::vector<int64_t>& input_lengths =
      options_.ctc_characters ? valid_positions : audio_tokens;
  at::Tensor log_probs =
      at::log_softmax(at::linear(states, ctc_weight_, ctc_bias_), -1).transpose(0, 1);
  // Frames past each clip's input length get no gradient. (Added when NaN conv gradients were
  // blamed on libtorch's CPU ctc_loss leaving those frames' gradient unset; the conv stem bug of
  // docs/training.md most likely caused them. The cut is kept: it costs nothing.)
  const at::Tensor frame = at::arange(log_probs.size(0), at::TensorOptions().dtype(at::kLong));
  const at::Tensor valid =
      (frame.unsqueeze(1) < LongTensor(input_lengths).unsqueeze(0)).unsqueeze(2).to(device);
  log_probs = at::where(valid, log_probs, log_probs.detach());
  const at::Tensor ctc =
      at::ctc_loss(log_probs.to(at::kFloat), LongTensor(ctc_targets).to(device), input_lengths,
                   ctc_target_lengths,
                   /*blank=*/ctc_weight_.size(0) - 1, at::Reduction::Mean, /*zero_infinity=*/true);
  losses->ctc = ctc.item<double>();
  losses->total = losses->total + options_.ctc_weight * ctc;
}

}  // namespace speechllm::tools
