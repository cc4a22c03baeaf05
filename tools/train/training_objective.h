// TrainingObjective: the loss of the small trained model (issue 9) on a batch of clips, computed
// with the engine's own modules (AudioEncoder::ForwardWithMask, Projector, Decoder::ForwardDense):
// cross-entropy on the transcript tokens (and the closing <|im_end|>) after the chat prompt, plus
// an auxiliary CTC loss on the encoder output through a head that is not part of the checkpoint.
// Owned by the trainer; its one training thread calls it.
#ifndef SPEECHLLM_TOOLS_TRAIN_TRAINING_OBJECTIVE_H_
#define SPEECHLLM_TOOLS_TRAIN_TRAINING_OBJECTIVE_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/model/qwen2_audio_model.h"

namespace speechllm::tools {

struct TrainingExample {
  std::vector<float> samples;       // 16 kHz mono
  std::vector<int64_t> target_ids;  // transcript tokens, without the end token
  std::string text;                 // the transcript, for character CTC targets
};

// Character classes of the CTC head in character mode: a-z (upper case folded), 0-9, space, ' and :
// (39 classes; others are dropped). The blank is class kCharacterClasses.
constexpr int64_t kCharacterClasses = 39;
std::vector<int64_t> CharacterTargets(const std::string& text);

struct ObjectiveOptions {
  double full_attention_fraction = 0.4;  // clips encoded offline-style; the rest block-causal
  int64_t min_block_positions = 26;      // conv positions (20 ms each): 0.52 s
  int64_t max_block_positions = 100;     // 2 s
  double ctc_weight = 0.3;
  // CTC targets: the decoder's tokens on the encoder output (25 Hz), or characters on the input of
  // the last encoder layer (50 Hz, before pooling: 40 classes with many examples each, an
  // intermediate CTC). Characters learn faster: run 4b of docs/training.md.
  bool ctc_characters = false;
  // Scale of the gradient the decoder's loss sends into the encoder (the projector always gets all
  // of it). Below 1 the encoder is shaped mostly by the CTC loss. (Added against an apparent
  // collapse of the encoder into a clip-independent "soft prompt", which was most likely the conv
  // stem gradient bug of docs/training.md.)
  double decoder_to_encoder_gradient = 1.0;
  // Only the encoder and the CTC head: no projector or decoder (encoder pre-training, run 4b of
  // docs/training.md; a step then costs about half as much).
  bool ctc_only = false;
};

struct Losses {
  at::Tensor total;  // differentiable scalar
  double cross_entropy = 0, ctc = 0;
  int64_t num_tokens = 0, num_correct = 0;  // teacher-forced greedy agreement on target tokens
};

// Each clip's encoder runs either with full attention (offline) or block-causal with a random block
// of 0.5-2 s (streaming mode).
class TrainingObjective {
 public:
  // `prefix_ids` / `suffix_ids`: the prompt around the audio placeholder; `end_id` closes every
  // transcript. The CTC head maps d_model to kCharacterClasses + 1 or vocab_size + 1 classes (blank
  // last).
  TrainingObjective(const engine::Qwen2AudioModel* model, std::vector<int64_t> prefix_ids,
                    std::vector<int64_t> suffix_ids, int64_t end_id, ObjectiveOptions options,
                    uint64_t seed);

  // Trainable tensors of the objective itself (the CTC head), not saved in the checkpoint.
  std::vector<at::Tensor> HeadParameters() const { return {ctc_weight_, ctc_bias_}; }

  // The CTC head as a safetensors file beside the checkpoint (kHeadFile in `checkpoint_dir`), so
  // that an --init run continues with the trained head instead of a fresh one whose random
  // gradients first disturb the encoder (runs 5a and 6 of docs/training.md).
  static constexpr char kHeadFile[] = "training_head.safetensors";
  absl::Status SaveHead(const std::string& checkpoint_dir) const;
  // Replaces the head's values with the file's. NOT_FOUND if the file is missing; INVALID_ARGUMENT
  // if its shapes do not match this head (the other CTC mode, another d_model).
  absl::Status LoadHead(const std::string& checkpoint_dir);

  // `streaming_fraction_override` < 0 keeps options.full_attention_fraction; 0 or 1 forces
  // block-causal or full attention for every clip (validation).
  Losses Compute(const std::vector<TrainingExample>& batch, std::mt19937_64* rng,
                 double full_attention_fraction_override = -1) const;

 private:
  // Additive encoder mask [batch, 1, positions, positions].
  at::Tensor EncoderMask(const std::vector<int64_t>& valid_positions, int64_t positions,
                         const std::vector<int64_t>& block_positions) const;

  // Adds options_.ctc_weight x the CTC loss of the batch to losses->total (and sets losses->ctc).
  void AddCtcLoss(const std::vector<TrainingExample>& batch, const at::Tensor& encoded,
                  const std::vector<at::Tensor>& encoder_states,
                  const std::vector<int64_t>& valid_positions,
                  const std::vector<int64_t>& audio_tokens, Losses* losses) const;

  const engine::Qwen2AudioModel* model_;
  std::vector<int64_t> prefix_ids_, suffix_ids_;
  int64_t end_id_;
  ObjectiveOptions options_;
  at::Tensor ctc_weight_, ctc_bias_;
};

}  // namespace speechllm::tools

#endif  // SPEECHLLM_TOOLS_TRAIN_TRAINING_OBJECTIVE_H_
