// speechllm-train: trains a small Qwen2-Audio model (issue 9) on clips made by make_data.py, with
// the engine's own modules, AdamW (warm-up then cosine decay) and checkpoints in the Hugging Face
// layout. docs/training.md has the command that made models/speechllm-asr-small.
//   speechllm-train --data .train/data --tokenizer .train/tokenizer/tokenizer.json
//       --out .train/model --steps 4000   (one command line)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/types.h>  // before clip_grad.h, which uses torch::Tensor undeclared

#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "engine/io/program_flags.h"
#include "engine/model/qwen2_audio_model.h"
#include "engine/model/tokenizer/prompt_builder.h"
#include "engine/model/tokenizer/tokenizer.h"
#include "tools/train/checkpoint_writer.h"
#include "tools/train/trainable_parameters.h"
#include "tools/train/training_clips.h"
#include "tools/train/training_objective.h"

ABSL_FLAG(std::string, data, "", "directory with train.tsv and train.pcm (make_data.py)");
ABSL_FLAG(std::string, tokenizer, "", "tokenizer.json with the Qwen2-Audio special tokens");
ABSL_FLAG(std::string, out, "", "checkpoint directory (rewritten at every --save_every)");
ABSL_FLAG(std::string, init, "", "start from this checkpoint instead of random weights");
ABSL_FLAG(int, steps, 4000, "optimizer steps");
ABSL_FLAG(int, batch, 12, "clips per step");
ABSL_FLAG(double, lr, 1e-3, "peak learning rate");
ABSL_FLAG(int, warmup_steps, 200, "linear warm-up steps");
ABSL_FLAG(double, final_lr_fraction, 0.05, "the cosine decays to this fraction of --lr");
ABSL_FLAG(double, weight_decay, 0.01, "AdamW weight decay");
ABSL_FLAG(double, ctc_weight, 0.5, "weight of the auxiliary CTC loss on the encoder (0 = none)");
ABSL_FLAG(bool, ctc_characters, false,
          "CTC on characters at the last encoder layer's input (50 Hz) instead of tokens at the "
          "output (25 Hz); run 4b's recipe, with --ctc_only pre-training (docs/training.md)");
ABSL_FLAG(bool, ctc_only, false,
          "train only the encoder and the CTC head (encoder pre-training for a later --init run)");
ABSL_FLAG(double, decoder_to_encoder_gradient, 1.0,
          "scale of the decoder loss's gradient into the encoder (the CTC loss trains it fully)");
ABSL_FLAG(double, full_attention_fraction, 0.4,
          "fraction of clips encoded with full attention; the rest block-causal, 0.5-2 s blocks");
ABSL_FLAG(double, position_scale, 0.1,
          "scale of the frozen sinusoidal encoder positions of a fresh model (1 = Whisper's)");
ABSL_FLAG(int, short_first_steps, 400,
          "the first steps draw only clips shorter than --short_seconds (easier alignments first)");
ABSL_FLAG(double, short_seconds, 1.8, "clip length limit of the --short_first_steps");
ABSL_FLAG(std::string, device, "cpu", "cpu, cuda or cuda:N (float32 either way)");
ABSL_FLAG(int, threads, 2, "libtorch CPU threads");
ABSL_FLAG(int, seed, 1, "random seed (weights, batches, blocks)");
ABSL_FLAG(int, log_every, 25, "steps between log lines");
ABSL_FLAG(bool, log_gradients, false, "log each weight's gradient and weight norms (debugging)");
ABSL_FLAG(int, save_every, 250, "steps between validation + checkpoint");
ABSL_FLAG(int, val_clips, 96, "last clips of train.tsv held out for validation");
ABSL_FLAG(std::string, instruction, "Transcribe the speech.",
          "the chat prompt's instruction (the server's --instruction default)");
ABSL_FLAG(int, d_model, 192, "encoder width");
ABSL_FLAG(int, encoder_layers, 4, "encoder layers");
ABSL_FLAG(int, encoder_heads, 3, "encoder attention heads");
ABSL_FLAG(int, encoder_ffn, 768, "encoder feed-forward width");
ABSL_FLAG(int, hidden_size, 256, "decoder width");
ABSL_FLAG(int, decoder_layers, 3, "decoder layers");
ABSL_FLAG(int, decoder_heads, 4, "decoder query heads");
ABSL_FLAG(int, decoder_kv_heads, 2, "decoder key/value heads");
ABSL_FLAG(int, intermediate_size, 768, "decoder MLP width");

namespace {

using speechllm::engine::ModelConfig;
using speechllm::engine::Qwen2AudioModel;
using speechllm::tools::Losses;
using speechllm::tools::TrainingExample;

[[noreturn]] void Die(const std::string& message) {
  std::cerr << "speechllm-train: " << message << "\n";
  std::exit(1);
}

template <typename T>
T Check(absl::StatusOr<T> value) {
  if (!value.ok()) Die(value.status().ToString());
  return *std::move(value);
}

ModelConfig ConfigFromFlags(int64_t vocab_size, int64_t audio_token_id,
                            std::vector<int64_t> stop_ids) {
  ModelConfig config;
  config.audio.d_model = absl::GetFlag(FLAGS_d_model);
  config.audio.num_layers = absl::GetFlag(FLAGS_encoder_layers);
  config.audio.num_heads = absl::GetFlag(FLAGS_encoder_heads);
  config.audio.ffn_dim = absl::GetFlag(FLAGS_encoder_ffn);
  config.text.vocab_size = static_cast<int>(vocab_size);
  config.text.hidden_size = absl::GetFlag(FLAGS_hidden_size);
  config.text.num_layers = absl::GetFlag(FLAGS_decoder_layers);
  config.text.num_heads = absl::GetFlag(FLAGS_decoder_heads);
  config.text.num_kv_heads = absl::GetFlag(FLAGS_decoder_kv_heads);
  config.text.head_dim = config.text.hidden_size / config.text.num_heads;
  config.text.intermediate_size = absl::GetFlag(FLAGS_intermediate_size);
  config.text.max_position_embeddings = 2048;
  config.audio_token_id = audio_token_id;
  config.audio_bos_token_id = audio_token_id + 1;
  config.audio_eos_token_id = audio_token_id + 2;
  config.stop_token_ids = std::move(stop_ids);
  config.dtype = "float32";
  return config;
}

// Batches of similar-length clips: 32 batches' worth of random clips sorted by length, cut into
// batches, shuffled.
class BatchSampler {
 public:
  BatchSampler(std::vector<size_t> pool, std::vector<int64_t> lengths, int batch, uint64_t seed)
      : pool_(std::move(pool)), lengths_(std::move(lengths)), batch_(batch), rng_(seed) {}
  std::vector<size_t> Next() {
    if (queue_.empty()) {
      std::vector<size_t> drawn(32 * batch_);
      std::uniform_int_distribution<size_t> pick(0, pool_.size() - 1);
      for (size_t& index : drawn) index = pool_[pick(rng_)];
      std::sort(drawn.begin(), drawn.end(),
                [&](size_t a, size_t b) { return lengths_[a] < lengths_[b]; });
      for (size_t i = 0; i + batch_ <= drawn.size(); i += batch_)
        queue_.emplace_back(drawn.begin() + i, drawn.begin() + i + batch_);
      std::shuffle(queue_.begin(), queue_.end(), rng_);
    }
    std::vector<size_t> next = std::move(queue_.back());
    queue_.pop_back();
    return next;
  }

 private:
  std::vector<size_t> pool_;
  std::vector<int64_t> lengths_;
  int batch_;
  std::mt19937_64 rng_;
  std::vector<std::vector<size_t>> queue_;
};

// Linear warm-up to `peak` over `warmup` steps, then cosine decay to `final_fraction` * peak.
double LearningRate(int step, int steps, int warmup, double peak, double final_fraction) {
  if (step <= warmup) return peak * step / warmup;
  const double progress = static_cast<double>(step - warmup) / std::max(1, steps - warmup);
  return peak * (final_fraction + (1 - final_fraction) * 0.5 * (1 + std::cos(M_PI * progress)));
}

// Teacher-forced cross-entropy and token accuracy on clips [first, end), with every clip encoded
// offline (full attention) and then block-causally.
template <typename ExamplesOf>
std::string ValidationReport(const speechllm::tools::TrainingObjective& objective,
                             const ExamplesOf& examples_of, size_t first, size_t end) {
  at::NoGradGuard no_grad;
  std::string report;
  for (double full : {1.0, 0.0}) {
    std::mt19937_64 rng(7);
    double ce = 0;
    int64_t tokens = 0, correct = 0;
    for (size_t i = first; i < end; i += 16) {
      std::vector<size_t> indices;
      for (size_t j = i; j < std::min(end, i + 16); ++j) indices.push_back(j);
      const Losses val = objective.Compute(examples_of(indices), &rng, full);
      ce += val.cross_entropy * val.num_tokens;
      tokens += val.num_tokens;
      correct += val.num_correct;
    }
    absl::StrAppend(&report, full > 0 ? " offline" : " block-causal", " ce ",
                    ce / std::max<int64_t>(1, tokens), " token_acc ",
                    static_cast<double>(correct) / std::max<int64_t>(1, tokens));
  }
  return report;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Trains a small Qwen2-Audio model on make_data.py clips.");
  speechllm::engine::ParseProgramFlagsOnly(argc, argv);
  const std::string data_dir = absl::GetFlag(FLAGS_data), out_dir = absl::GetFlag(FLAGS_out);
  const std::string tokenizer_path = absl::GetFlag(FLAGS_tokenizer);
  if (data_dir.empty() || out_dir.empty() || tokenizer_path.empty())
    Die("--data, --tokenizer and --out are required");
  at::set_num_threads(absl::GetFlag(FLAGS_threads));
  const uint64_t seed = absl::GetFlag(FLAGS_seed);

  namespace tk = speechllm::engine::tokenizer;
  auto tokenizer = Check(tk::Tokenizer::FromTokenizerJson(tokenizer_path));
  auto builder = Check(tk::PromptBuilder::Create(tokenizer.get()));
  const tk::Qwen2AudioSpecialTokens special = builder.special_tokens();
  const tk::AudioRequestPrompt prompt =
      Check(builder.BuildAudioRequest(tk::PromptTemplate::kChat, absl::GetFlag(FLAGS_instruction)));
  const std::vector<int64_t>& prefix = prompt.prefix_ids;
  const std::vector<int64_t>& suffix = prompt.suffix_ids;

  speechllm::engine::RuntimeOptions options;
  options.dtype = "float32";
  options.device = absl::GetFlag(FLAGS_device);
  std::unique_ptr<Qwen2AudioModel> model;
  const std::string init = absl::GetFlag(FLAGS_init);
  if (!init.empty()) {
    model = Check(Qwen2AudioModel::Load(init, options));
  } else {
    const ModelConfig config =
        ConfigFromFlags(tokenizer->id_limit(), special.audio, {special.im_end, special.endoftext});
    model = Check(Qwen2AudioModel::CreateRandom(config, options, seed));
  }
  speechllm::tools::TrainableParameters trainable = speechllm::tools::PrepareForTraining(
      *model, /*fresh=*/init.empty(), absl::GetFlag(FLAGS_position_scale));
  std::vector<at::Tensor> parameters = trainable.tensors;
  speechllm::tools::ObjectiveOptions objective_options;
  objective_options.ctc_weight = absl::GetFlag(FLAGS_ctc_weight);
  objective_options.full_attention_fraction = absl::GetFlag(FLAGS_full_attention_fraction);
  objective_options.ctc_characters = absl::GetFlag(FLAGS_ctc_characters);
  objective_options.decoder_to_encoder_gradient = absl::GetFlag(FLAGS_decoder_to_encoder_gradient);
  objective_options.ctc_only = absl::GetFlag(FLAGS_ctc_only);
  speechllm::tools::TrainingObjective objective(model.get(), prefix, suffix, special.im_end,
                                                objective_options, seed + 1);
  if (!init.empty()) {
    const absl::Status head = objective.LoadHead(init);
    if (head.ok()) {
      std::fprintf(stderr, "speechllm-train: CTC head from %s/%s\n", init.c_str(),
                   speechllm::tools::TrainingObjective::kHeadFile);
    } else if (absl::IsNotFound(head) || absl::IsInvalidArgument(head)) {
      std::fprintf(stderr, "speechllm-train: a fresh CTC head (%s)\n", head.ToString().c_str());
    } else {
      Die(head.ToString());
    }
  }
  for (const at::Tensor& head : objective.HeadParameters()) parameters.push_back(head);

  auto clips = Check(speechllm::tools::TrainingClips::Open(data_dir));
  const size_t num_clips = clips->entries().size();
  const size_t val_clips = std::min<size_t>(absl::GetFlag(FLAGS_val_clips), num_clips / 10);
  std::vector<std::vector<int64_t>> targets(num_clips);
  std::vector<int64_t> lengths(num_clips);
  double train_seconds = 0;
  for (size_t i = 0; i < num_clips; ++i) {
    const auto ids = Check(tokenizer->Encode(clips->entries()[i].text));
    targets[i].assign(ids.begin(), ids.end());
    lengths[i] = clips->entries()[i].num_samples;
    if (i + val_clips < num_clips) train_seconds += lengths[i] / 16000.0;
  }
  std::vector<size_t> pool(num_clips - val_clips);
  std::iota(pool.begin(), pool.end(), 0);
  BatchSampler sampler(pool, lengths, absl::GetFlag(FLAGS_batch), seed + 2);
  std::vector<size_t> short_pool;
  for (size_t index : pool) {
    if (lengths[index] < absl::GetFlag(FLAGS_short_seconds) * 16000) short_pool.push_back(index);
  }
  const int short_first_steps = short_pool.empty() ? 0 : absl::GetFlag(FLAGS_short_first_steps);
  BatchSampler short_sampler(short_pool.empty() ? pool : short_pool, lengths,
                             absl::GetFlag(FLAGS_batch), seed + 4);
  auto examples_of = [&](const std::vector<size_t>& indices) {
    std::vector<TrainingExample> batch;
    for (size_t index : indices) {
      batch.push_back({Check(clips->Samples(index)), targets[index], clips->entries()[index].text});
    }
    return batch;
  };
  std::fprintf(stderr,
               "speechllm-train: %lld parameters (%s); %zu training clips (%.2f h), %zu "
               "validation; prompt %zu + audio + %zu tokens\n",
               static_cast<long long>(trainable.num_total), model->config().ToString().c_str(),
               num_clips - val_clips, train_seconds / 3600, val_clips, prefix.size(),
               suffix.size());

  const int steps = absl::GetFlag(FLAGS_steps), warmup = absl::GetFlag(FLAGS_warmup_steps);
  const double peak_lr = absl::GetFlag(FLAGS_lr);
  const double final_fraction = absl::GetFlag(FLAGS_final_lr_fraction);
  torch::optim::AdamW optimizer(parameters, torch::optim::AdamWOptions(peak_lr)
                                                .betas({0.9, 0.98})
                                                .eps(1e-8)
                                                .weight_decay(absl::GetFlag(FLAGS_weight_decay)));
  std::mt19937_64 rng(seed + 3);
  const auto start = std::chrono::steady_clock::now();
  double window_ce = 0, window_ctc = 0, total_audio_s = 0;
  int64_t window_tokens = 0, window_correct = 0, window_steps = 0;
  for (int step = 1; step <= steps; ++step) {
    const double lr = LearningRate(step, steps, warmup, peak_lr, final_fraction);
    for (auto& group : optimizer.param_groups())
      static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
    const std::vector<size_t> indices =
        step <= short_first_steps ? short_sampler.Next() : sampler.Next();
    for (size_t index : indices) total_audio_s += lengths[index] / 16000.0;
    const Losses losses = objective.Compute(examples_of(indices), &rng);
    optimizer.zero_grad();
    losses.total.backward();
    if (absl::GetFlag(FLAGS_log_gradients) && step % absl::GetFlag(FLAGS_log_every) == 0) {
      const std::vector<speechllm::engine::NamedTensor> named = model->Parameters();
      for (const auto& [name, tensor] : named) {
        if (!tensor.grad().defined()) continue;
        std::fprintf(stderr, "  %-50s |w| %.3e |g| %.3e\n", name.c_str(),
                     tensor.norm().item<double>(), tensor.grad().norm().item<double>());
      }
    }
    torch::nn::utils::clip_grad_norm_(parameters, 1.0);
    optimizer.step();
    window_ce += losses.cross_entropy;
    window_ctc += losses.ctc;
    window_tokens += losses.num_tokens;
    window_correct += losses.num_correct;
    ++window_steps;
    const double elapsed_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (step % absl::GetFlag(FLAGS_log_every) == 0) {
      std::fprintf(stderr,
                   "step %d/%d lr %.2e ce %.3f ctc %.3f token_acc %.3f | %.0f s elapsed, %.1f "
                   "audio-s/s\n",
                   step, steps, lr, window_ce / window_steps, window_ctc / window_steps,
                   static_cast<double>(window_correct) / std::max<int64_t>(1, window_tokens),
                   elapsed_s, total_audio_s / std::max(1e-9, elapsed_s));
      window_ce = window_ctc = 0;
      window_tokens = window_correct = window_steps = 0;
    }
    if (step % absl::GetFlag(FLAGS_save_every) == 0 || step == steps) {
      const std::string report =
          ValidationReport(objective, examples_of, num_clips - val_clips, num_clips);
      speechllm::tools::CheckpointInfo info;
      info.tokenizer_json = tokenizer_path;
      info.eos_token_ids = {special.im_end, special.endoftext};
      info.note = absl::StrCat("step ", step, " of ", steps, ", seed ", seed);
      if (absl::Status saved = speechllm::tools::SaveCheckpoint(*model, info, out_dir); !saved.ok())
        Die(saved.ToString());
      if (absl::Status saved = objective.SaveHead(out_dir); !saved.ok()) Die(saved.ToString());
      std::fprintf(stderr, "step %d validation:%s; saved %s\n", step, report.c_str(),
                   out_dir.c_str());
    }
  }
  return 0;
}
