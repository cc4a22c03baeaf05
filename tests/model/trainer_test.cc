// The trainer (label model): AdamW steps on the training objective fit two synthetic clips, the
// sinusoid table matches Whisper's formula, and a saved checkpoint loads back through the
// Hugging Face layout loader with every weight bit-identical and transcribes.
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <random>

#include <ATen/core/grad_mode.h>
#include <torch/optim/adamw.h>

#include "engine/model/offline_transcriber.h"
#include "engine/model/qwen2_audio_model.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"
#include "tools/train/checkpoint_writer.h"
#include "tools/train/trainable_parameters.h"
#include "tools/train/training_objective.h"

namespace speechllm::tools {
namespace {

namespace fs = std::filesystem;

std::vector<float> Tone(double frequency_hz, double seconds) {
  std::vector<float> samples(static_cast<size_t>(seconds * 16000));
  for (size_t i = 0; i < samples.size(); ++i)
    samples[i] = 0.3f * static_cast<float>(std::sin(2 * M_PI * frequency_hz * i / 16000.0));
  return samples;
}

// The tiny preset with random weights; `wide_encoder` gives it the default trained model's encoder
// width (192, 3 heads).
std::unique_ptr<engine::Qwen2AudioModel> FreshTinyModel(bool wide_encoder = false) {
  auto config = engine::ModelConfig::Preset("tiny");
  EXPECT_TRUE(config.ok()) << config.status();
  if (wide_encoder) {
    config->audio.d_model = 192;
    config->audio.num_heads = 3;
    config->audio.ffn_dim = 384;
  }
  config->stop_token_ids = {505, 503};
  engine::RuntimeOptions options;
  options.dtype = "float32";
  auto model = engine::Qwen2AudioModel::CreateRandom(*config, options, 5);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? *std::move(model) : nullptr;
}

TEST(TrainerTest, SinusoidsFollowWhisper) {
  const at::Tensor table = Sinusoids(1500, 64);
  ASSERT_EQ(table.sizes(), (std::vector<int64_t>{1500, 64}));
  // Position 7, channel 3 (sin half) and 32 + 3 (cos half).
  const double rate = std::exp(-std::log(10000.0) / 31 * 3);
  EXPECT_NEAR(table[7][3].item<double>(), std::sin(7 * rate), 1e-6);
  EXPECT_NEAR(table[7][35].item<double>(), std::cos(7 * rate), 1e-6);
}

TEST(TrainerTest, CharacterTargetsFoldCaseAndDropOtherCharacters) {
  EXPECT_EQ(CharacterTargets("Ab 9:'-z"), (std::vector<int64_t>{0, 1, 36, 35, 38, 37, 25}));
}

// Autograd against central differences, for the largest-gradient entry of weights all along the
// model, from the conv stem to the decoder's embeddings. (The conv stem bug of docs/training.md,
// garbage gradients when the GELU came after the transpose, reproduced in a standalone program but
// not inside this process, whose fresh memory is zero; this test guards the gradients generally.)
TEST(TrainerTest, GradientsMatchFiniteDifferences) {
  std::unique_ptr<engine::Qwen2AudioModel> model = FreshTinyModel(/*wide_encoder=*/true);
  ASSERT_NE(model, nullptr);
  TrainableParameters trainable = PrepareForTraining(*model, /*fresh=*/true, 0.1);
  ObjectiveOptions options;
  options.full_attention_fraction = 1.0;  // the same mask on every evaluation
  options.ctc_weight = 0.5;
  TrainingObjective objective(model.get(), {504, 10}, {502, 11}, 505, options, 7);
  std::vector<float> noisy = Tone(440, 3.7);
  std::mt19937 noise_rng(3);
  std::normal_distribution<float> noise(0.0f, 0.05f);
  for (float& sample : noisy) sample += noise(noise_rng);
  const std::vector<TrainingExample> batch = {{noisy, {40, 41, 42, 43}, "a tone"},
                                              {Tone(900, 2.1), {60, 61}, "b"}};
  std::mt19937_64 rng(1);
  auto loss_value = [&]() {
    at::NoGradGuard no_grad;
    return objective.Compute(batch, &rng).total.item<double>();
  };
  Losses losses = objective.Compute(batch, &rng);
  losses.total.backward();
  int checked = 0;
  for (const engine::NamedTensor& named : model->Parameters()) {
    const std::string& name = named.name;
    if (name != "audio_tower.conv1.weight" && name != "audio_tower.conv2.weight" &&
        name != "audio_tower.layers.0.self_attn.q_proj.weight" &&
        name != "audio_tower.layers.1.fc1.weight" &&
        name != "multi_modal_projector.linear.weight" &&
        name != "language_model.model.layers.0.mlp.up_proj.weight" &&
        name != "language_model.model.embed_tokens.weight")
      continue;
    ASSERT_TRUE(named.tensor.grad().defined()) << name;
    const at::Tensor gradient = named.tensor.grad().reshape({-1});
    ASSERT_TRUE(at::isfinite(gradient).all().item<bool>()) << name;
    const int64_t index = gradient.abs().argmax().item<int64_t>();
    const double autograd = gradient[index].item<double>();
    at::Tensor flat = named.tensor.detach().view({-1});
    const double original = flat[index].item<double>();
    const double step = 1e-2;
    {
      at::NoGradGuard no_grad;
      flat[index].fill_(original + step);
    }
    const double plus = loss_value();
    {
      at::NoGradGuard no_grad;
      flat[index].fill_(original - step);
    }
    const double minus = loss_value();
    {
      at::NoGradGuard no_grad;
      flat[index].fill_(original);
    }
    const double numeric = (plus - minus) / (2 * step);
    std::printf("%-50s autograd %.5e finite difference %.5e\n", name.c_str(), autograd, numeric);
    EXPECT_NEAR(autograd, numeric, 0.05 * std::abs(numeric) + 1e-4) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 7);
}

// Run 4b's encoder pre-training: character CTC alone reaches the conv stem and the CTC head with
// finite gradients and leaves the projector and decoder untouched.
TEST(TrainerTest, CharacterCtcOnlyTrainsTheEncoderAlone) {
  std::unique_ptr<engine::Qwen2AudioModel> model = FreshTinyModel(/*wide_encoder=*/true);
  ASSERT_NE(model, nullptr);
  TrainableParameters trainable = PrepareForTraining(*model, /*fresh=*/true, 1.0);
  ObjectiveOptions options;
  options.ctc_characters = true;
  options.ctc_only = true;
  options.ctc_weight = 1.0;
  TrainingObjective objective(model.get(), {504, 10}, {502, 11}, 505, options, 7);
  const std::vector<TrainingExample> batch = {{Tone(300, 1.7), {40}, "low tone"},
                                              {Tone(1200, 0.9), {60}, "hi"}};
  std::mt19937_64 rng(1);
  Losses losses = objective.Compute(batch, &rng);
  EXPECT_TRUE(std::isfinite(losses.ctc)) << losses.ctc;
  EXPECT_GT(losses.ctc, 0);
  EXPECT_EQ(losses.num_tokens, 0);
  losses.total.backward();
  for (const engine::NamedTensor& named : model->Parameters()) {
    if (named.name == "audio_tower.embed_positions.weight") continue;
    const bool in_encoder = named.name.rfind("audio_tower.", 0) == 0;
    // The last layer and the final norm come after the 50 Hz states the characters are read from.
    const bool after_ctc = named.name.rfind("audio_tower.layers.1.", 0) == 0 ||
                           named.name.rfind("audio_tower.layer_norm.", 0) == 0;
    if (in_encoder && !after_ctc) {
      ASSERT_TRUE(named.tensor.grad().defined()) << named.name;
      EXPECT_TRUE(at::isfinite(named.tensor.grad()).all().item<bool>()) << named.name;
      EXPECT_GT(named.tensor.grad().abs().max().item<double>(), 0) << named.name;
    } else {
      EXPECT_FALSE(named.tensor.grad().defined() &&
                   named.tensor.grad().abs().max().item<double>() > 0)
          << named.name << " should get no gradient";
    }
  }
  for (const at::Tensor& head : objective.HeadParameters()) {
    ASSERT_TRUE(head.grad().defined());
    EXPECT_TRUE(at::isfinite(head.grad()).all().item<bool>());
  }
}

// The CTC head travels beside the checkpoint: a head loaded into an objective of another seed
// gives the saved head's loss exactly; a missing file is NOT_FOUND and a head of the other CTC mode
// INVALID_ARGUMENT (the trainer then starts a fresh head).
TEST(TrainerTest, TheCtcHeadRoundTripsBesideTheCheckpoint) {
  std::unique_ptr<engine::Qwen2AudioModel> model = FreshTinyModel(/*wide_encoder=*/true);
  ASSERT_NE(model, nullptr);
  ObjectiveOptions options;
  options.ctc_characters = true;
  options.ctc_only = true;
  options.ctc_weight = 1.0;
  options.full_attention_fraction = 1.0;
  TrainingObjective saved(model.get(), {504, 10}, {502, 11}, 505, options, 7);
  TrainingObjective other(model.get(), {504, 10}, {502, 11}, 505, options, 8);
  const std::vector<TrainingExample> batch = {{Tone(300, 1.7), {40}, "low tone"}};
  auto ctc = [&](const TrainingObjective& objective) {
    at::NoGradGuard no_grad;
    std::mt19937_64 rng(1);
    return objective.Compute(batch, &rng).ctc;
  };
  const fs::path dir = fs::temp_directory_path() / ("ctc_head_" + std::to_string(getpid()));
  const fs::path empty_dir = dir / "empty";
  fs::create_directories(empty_dir);
  ASSERT_TRUE(saved.SaveHead(dir.string()).ok());
  ASSERT_TRUE(fs::exists(dir / TrainingObjective::kHeadFile));
  const double saved_ctc = ctc(saved), fresh_ctc = ctc(other);
  EXPECT_EQ(other.LoadHead(empty_dir.string()).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(other.LoadHead(dir.string()).ok());
  const double loaded_ctc = ctc(other);
  std::printf("CTC loss: saved head %.6f, fresh head %.6f, loaded head %.6f\n", saved_ctc,
              fresh_ctc, loaded_ctc);
  EXPECT_NE(fresh_ctc, saved_ctc);
  EXPECT_EQ(loaded_ctc, saved_ctc);
  options.ctc_characters = false;
  TrainingObjective token_mode(model.get(), {504, 10}, {502, 11}, 505, options, 7);
  const absl::Status mismatch = token_mode.LoadHead(dir.string());
  EXPECT_EQ(mismatch.code(), absl::StatusCode::kInvalidArgument) << mismatch;
  EXPECT_THAT(std::string(mismatch.message()), ::testing::HasSubstr("ctc.weight is [40, 192]"));
  speechllm::testing::RemoveTree(dir.string());
}

TEST(TrainerTest, StepsFitTwoClipsAndTheCheckpointRoundTrips) {
  auto model = FreshTinyModel();
  ASSERT_NE(model, nullptr);
  TrainableParameters trainable = PrepareForTraining(*model, /*fresh=*/true);
  EXPECT_GT(trainable.num_trainable, 0);
  EXPECT_EQ(trainable.num_total - trainable.num_trainable, 1500 * 64);  // frozen positions
  ObjectiveOptions options;
  options.full_attention_fraction = 0.5;
  TrainingObjective objective(model.get(), {504, 10}, {502, 11}, 505, options, 7);
  std::vector<at::Tensor> parameters = trainable.tensors;
  for (const at::Tensor& head : objective.HeadParameters()) parameters.push_back(head);
  torch::optim::AdamW optimizer(parameters, torch::optim::AdamWOptions(3e-3));
  const std::vector<TrainingExample> batch = {{Tone(300, 1.3), {40, 41, 42}, "low tone"},
                                              {Tone(1200, 0.9), {60, 61}, "high"}};
  std::mt19937_64 rng(1);
  double first = 0, last = 0;
  int64_t correct = 0, tokens = 0;
  for (int step = 0; step < 60; ++step) {
    Losses losses = objective.Compute(batch, &rng);
    if (step == 0) first = losses.cross_entropy;
    last = losses.cross_entropy;
    correct = losses.num_correct;
    tokens = losses.num_tokens;
    optimizer.zero_grad();
    losses.total.backward();
    if (step == 0) {
      // Every trainable weight (encoder, projector, decoder, CTC head) receives a gradient.
      const auto named = model->Parameters();
      for (const engine::NamedTensor& weight : named) {
        if (!weight.tensor.requires_grad()) continue;
        ASSERT_TRUE(weight.tensor.grad().defined()) << weight.name;
        EXPECT_GT(weight.tensor.grad().norm().item<double>(), 0) << weight.name;
      }
    }
    optimizer.step();
  }
  std::printf("cross-entropy %.3f -> %.3f after 60 steps; %lld of %lld tokens right\n", first, last,
              static_cast<long long>(correct), static_cast<long long>(tokens));
  EXPECT_LT(last, 0.2 * first);
  EXPECT_EQ(correct, tokens);

  const fs::path dir = fs::temp_directory_path() / ("trainer_test_" + std::to_string(::getpid()));
  CheckpointInfo info;
  info.tokenizer_json =
      std::string(SPEECHLLM_SOURCE_DIR) + "/models/qwen2-audio-tiny/tokenizer.json";
  info.eos_token_ids = {505, 503};
  info.note = "trainer_test";
  ASSERT_TRUE(SaveCheckpoint(*model, info, dir.string()).ok());
  engine::RuntimeOptions runtime;
  auto reloaded = engine::Qwen2AudioModel::Load(dir.string(), runtime);
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  const auto saved = model->Parameters(), loaded = (*reloaded)->Parameters();
  ASSERT_EQ(saved.size(), loaded.size());
  for (size_t i = 0; i < saved.size(); ++i) {
    EXPECT_EQ(saved[i].name, loaded[i].name);
    EXPECT_TRUE(at::equal(saved[i].tensor.detach(), loaded[i].tensor)) << saved[i].name;
  }
  EXPECT_THAT((*reloaded)->config().stop_token_ids, ::testing::IsSupersetOf({505, 503}));
  auto transcriber = engine::OfflineTranscriber::Create(dir.string(), runtime);
  ASSERT_TRUE(transcriber.ok()) << transcriber.status();
  auto result = (*transcriber)->Transcribe(Tone(300, 1.3), {504, 10, 501, 500, 502, 11}, 8);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_FALSE(result->generated_ids.empty());
  speechllm::testing::RemoveTree(dir.string());
}

}  // namespace
}  // namespace speechllm::tools
