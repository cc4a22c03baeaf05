// Loading checkpoints (label model): single-file and nested-name layouts, BF16 storage, and the
// clear errors for missing or misshaped tensors, truncated shards and bad transcription requests.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <utility>
#include <vector>

#include <ATen/Parallel.h>

#include "engine/io/wav_reader.h"
#include "engine/model/blas_threads.h"
#include "engine/model/offline_transcriber.h"
#include "engine/model/qwen2_audio_model.h"
#include "engine/model/safetensors.h"
#include "engine/model/safetensors_writer.h"
#include "engine/model/torch_compat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace speechllm::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const std::vector<int64_t> kPrompt = {1, 2, 3, 501, 500, 502, 10, 11, 12};

std::string FixtureModel() { return speechllm::testing::GoldenDir() + "/model"; }

std::vector<float> ClipA() {
  auto samples = ReadMonoWavFile(speechllm::testing::GoldenDir() + "/clip_a.wav", 16000);
  EXPECT_TRUE(samples.ok());
  return *samples;
}

class ModelLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("model_load_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    fs::copy_file(FixtureModel() + "/config.json", dir_ / "config.json");
    auto checkpoint = SafetensorsCheckpoint::Open(FixtureModel());
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
    checkpoint_ = std::move(checkpoint).value();
  }
  void TearDown() override {
    speechllm::testing::RemoveTree(dir_.string());
    EXPECT_FALSE(fs::exists(dir_)) << dir_;
  }

  // Writes the fixture's tensors into one model.safetensors, renamed/dropped/converted on the way.
  void WriteCheckpoint(const std::function<std::string(const std::string&)>& rename,
                       bool as_bf16 = false) {
    SafetensorsWriter writer;
    for (const std::string& name : checkpoint_->Names()) {
      const std::string new_name = rename(name);
      if (new_name.empty()) continue;
      const TensorView view = *checkpoint_->Get(name);
      if (as_bf16) {
        const std::vector<float> values = view.ToFloat32();
        std::string bytes(values.size() * 2, '\0');
        for (size_t i = 0; i < values.size(); ++i) {
          const uint16_t bits = FloatToBFloat16(values[i]);
          std::memcpy(bytes.data() + 2 * i, &bits, 2);
        }
        ASSERT_TRUE(writer.Add(new_name, DType::kBF16, view.shape, bytes).ok());
      } else {
        ASSERT_TRUE(writer
                        .Add(new_name, view.dtype, view.shape,
                             std::string(reinterpret_cast<const char*>(view.data), view.num_bytes))
                        .ok());
      }
    }
    ASSERT_TRUE(writer.WriteFile((dir_ / "model.safetensors").string()).ok());
  }
  absl::StatusOr<std::vector<int64_t>> Transcribe(const std::string& dtype = "float32") {
    RuntimeOptions options;
    options.dtype = dtype;
    auto transcriber = OfflineTranscriber::Create(dir_.string(), options);
    if (!transcriber.ok()) return transcriber.status();
    auto result = (*transcriber)->Transcribe(ClipA(), kPrompt, 24);
    if (!result.ok()) return result.status();
    return result->generated_ids;
  }

  fs::path dir_;
  std::unique_ptr<SafetensorsCheckpoint> checkpoint_;
};

TEST_F(ModelLoadTest, SingleFileAndNestedDecoderNamesGiveTheSameTokens) {
  WriteCheckpoint([](const std::string& name) { return name; });
  auto plain = Transcribe();
  ASSERT_TRUE(plain.ok()) << plain.status();
  // transformers 5.x nests the decoder one level deeper (language_model.model.model.*).
  WriteCheckpoint([](const std::string& name) {
    const std::string prefix = "language_model.model.";
    return name.rfind(prefix, 0) == 0 ? "language_model.model.model." + name.substr(prefix.size())
                                      : name;
  });
  auto nested = Transcribe();
  ASSERT_TRUE(nested.ok()) << nested.status();
  EXPECT_EQ(*plain, *nested);
  EXPECT_EQ(plain->size(), 24u);
}

TEST_F(ModelLoadTest, Bf16StorageLoadsInBothPrecisions) {
  WriteCheckpoint([](const std::string& name) { return name; }, /*as_bf16=*/true);
  for (const char* dtype : {"float32", "bfloat16"}) {
    auto tokens = Transcribe(dtype);
    ASSERT_TRUE(tokens.ok()) << dtype << ": " << tokens.status();
    EXPECT_EQ(tokens->size(), 24u);
  }
}

TEST_F(ModelLoadTest, MissingTensorIsNamed) {
  WriteCheckpoint(
      [](const std::string& name) { return name == "audio_tower.layers.1.fc2.bias" ? "" : name; });
  auto tokens = Transcribe();
  EXPECT_EQ(tokens.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(tokens.status().message(), HasSubstr("audio_tower.layers.1.fc2.bias"));
}

TEST_F(ModelLoadTest, ShapeMismatchIsNamed) {
  WriteCheckpoint([](const std::string& name) { return name; });
  std::ifstream in(dir_ / "config.json");
  std::string config((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = config.find("\"encoder_ffn_dim\": 256");
  ASSERT_NE(at, std::string::npos);
  config.replace(at, std::strlen("\"encoder_ffn_dim\": 256"), "\"encoder_ffn_dim\": 128");
  std::ofstream(dir_ / "config.json") << config;
  auto tokens = Transcribe();
  EXPECT_EQ(tokens.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(tokens.status().message(), HasSubstr("audio_tower.layers.0.fc1.weight"));
  EXPECT_THAT(tokens.status().message(), HasSubstr("[256, 64]"));
}

// Replaces `from` by `to` in the copied config.json.
void EditConfig(const fs::path& dir, const std::string& from, const std::string& to) {
  std::ifstream in(dir / "config.json");
  std::string config((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t at = config.find(from);
  ASSERT_NE(at, std::string::npos) << from;
  config.replace(at, from.size(), to);
  std::ofstream(dir / "config.json") << config;
}

// A config with fewer layers than the checkpoint loaded the first layers and transcribed with a
// truncated model (other tokens, exit 0).
TEST_F(ModelLoadTest, LayersTheConfigLeavesUnusedAreAnError) {
  WriteCheckpoint([](const std::string& name) { return name; });
  EditConfig(dir_, "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1");
  auto tokens = Transcribe();
  EXPECT_EQ(tokens.status().code(), absl::StatusCode::kInvalidArgument) << tokens.status();
  EXPECT_THAT(tokens.status().message(), HasSubstr("language_model.model.layers.1."));
  EXPECT_THAT(tokens.status().message(), HasSubstr("text_config.num_hidden_layers 1"));
}

// tie_word_embeddings: the output head is the embedding matrix, as HF ties it after loading, even
// where the checkpoint stores an lm_head.weight (it used to be read and used).
TEST_F(ModelLoadTest, ATiedHeadIsTheEmbeddingWhateverTheCheckpointStores) {
  WriteCheckpoint([](const std::string& name) { return name; });  // lm_head.weight included
  EditConfig(dir_, "\"tie_word_embeddings\": false", "\"tie_word_embeddings\": true");
  RuntimeOptions options;
  options.dtype = "float32";
  auto model = Qwen2AudioModel::Load(dir_.string(), options);
  ASSERT_TRUE(model.ok()) << model.status();
  const Decoder& decoder = (*model)->decoder();
  const int64_t vocab = (*model)->config().text.vocab_size;
  const at::Tensor embedding =
      decoder.Embed(at::arange(vocab, at::TensorOptions().dtype(at::kLong)));
  at::manual_seed(3);
  const at::Tensor hidden = at::randn({2, embedding.size(1)});
  const at::Tensor logits = decoder.Logits(hidden);
  const double error = (logits - at::matmul(hidden, embedding.t())).abs().max().item<double>();
  std::printf("tied head against hidden x embedding^T: max |error| %.3g\n", error);
  EXPECT_LT(error, 1e-4);
}

TEST_F(ModelLoadTest, TruncatedShardIsDataLoss) {
  WriteCheckpoint([](const std::string& name) { return name; });
  fs::resize_file(dir_ / "model.safetensors", fs::file_size(dir_ / "model.safetensors") - 1000);
  EXPECT_EQ(Transcribe().status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(ModelLoadTest, BadRuntimeOptions) {
  RuntimeOptions options;
  options.device = "tpu";
  EXPECT_EQ(OfflineTranscriber::Create(FixtureModel(), options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.device = "cpu";
  options.dtype = "int4";
  EXPECT_EQ(OfflineTranscriber::Create(FixtureModel(), options).status().code(),
            absl::StatusCode::kInvalidArgument);
  if (!at::hasCUDA()) {
    options.device = "cuda";
    options.dtype = "";
    EXPECT_EQ(OfflineTranscriber::Create(FixtureModel(), options).status().code(),
              absl::StatusCode::kFailedPrecondition);
  }
}

TEST(TranscribeErrorsTest, BadRequestsAreInvalidArgument) {
  auto transcriber = OfflineTranscriber::Create(FixtureModel(), RuntimeOptions{});
  ASSERT_TRUE(transcriber.ok()) << transcriber.status();
  const std::vector<float> clip = ClipA();
  struct Case {
    std::vector<float> samples;
    std::vector<int64_t> prompt;
    int max_new_tokens;
    const char* message;
  };
  for (const Case& c : {
           Case{std::vector<float>(320, 0.1f), kPrompt, 4, "too short"},
           Case{{}, kPrompt, 4, "too short"},
           Case{clip, {1, 2, 3}, 4, "no audio token"},
           Case{clip, {500, 1, 500}, 4, "separate audio placeholders"},
           Case{clip, {500, 500, 500}, 4, "yields 84"},
           Case{clip, {500, 9999}, 4, "outside the vocabulary"},
           Case{clip, kPrompt, 5000, "max_position_embeddings"},
           Case{clip, kPrompt, -1, "max_new_tokens"},
       }) {
    auto result = (*transcriber)->Transcribe(c.samples, c.prompt, c.max_new_tokens);
    ASSERT_FALSE(result.ok()) << c.message;
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << result.status();
    EXPECT_THAT(result.status().message(), HasSubstr(c.message));
  }
  // The shortest clip that yields one token works.
  auto one_token = (*transcriber)->Transcribe(std::vector<float>(321, 0.1f), kPrompt, 2);
  ASSERT_TRUE(one_token.ok()) << one_token.status();
  EXPECT_EQ(one_token->num_audio_tokens, 1);
}

// OpenBLAS's own threads (which libtorch's setting does not reach) follow RuntimeOptions on the
// CPU: 0 leaves them, N sets N, -1 keeps the library's count up to kFullBlasUpToSequences live
// sequences and takes one less than libtorch's threads beyond. Debian's libtorch calls OpenBLAS;
// a libtorch with another BLAS has nothing to set, and the summary says so.
TEST(CpuThreadsTest, BlasThreadsFollowTheRuntimeOptions) {
  const int blas_before = BlasThreads();
  const int torch_before = at::get_num_threads();
  RuntimeOptions options;
  auto model = Qwen2AudioModel::Load(FixtureModel(), options);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(BlasThreads(), blas_before);
  std::printf("blas_threads 0: %s\n", (*model)->threads_summary().c_str());
  if (BlasLibraryName().empty()) {
    EXPECT_EQ(blas_before, -1);
    EXPECT_THAT((*model)->threads_summary(), HasSubstr("no BLAS threads to set"));
    return;
  }
  EXPECT_THAT((*model)->threads_summary(), HasSubstr("(its own setting)"));
  options.blas_threads = 3;
  model = Qwen2AudioModel::Load(FixtureModel(), options);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(BlasThreads(), 3);
  EXPECT_THAT((*model)->threads_summary(), HasSubstr("OpenBLAS 3"));
  (*model)->blas_threads().Apply(100);  // a fixed count stays
  EXPECT_EQ(BlasThreads(), 3);
  // Automatic, with libtorch on 2 threads and the library on 3: 3 for a few sequences, 1 beyond.
  options.blas_threads = -1;
  options.num_threads = 2;
  model = Qwen2AudioModel::Load(FixtureModel(), options);
  ASSERT_TRUE(model.ok()) << model.status();
  std::printf("blas_threads -1: %s\n", (*model)->threads_summary().c_str());
  EXPECT_THAT((*model)->threads_summary(),
              HasSubstr("libtorch 2, OpenBLAS 3 up to 16 sequences, 1 beyond (automatic)"));
  BlasThreadPolicy& policy = (*model)->blas_threads();
  for (const auto& [live, threads] :
       std::vector<std::pair<int64_t, int>>{{1, 3},
                                            {kFullBlasUpToSequences, 3},
                                            {kFullBlasUpToSequences + 1, 1},
                                            {200, 1},
                                            {0, 3}}) {
    policy.Apply(live);
    EXPECT_EQ(BlasThreads(), threads) << live << " live sequences";
    EXPECT_EQ(policy.current(), threads);
  }
  options.blas_threads = -2;
  EXPECT_EQ(Qwen2AudioModel::Load(FixtureModel(), options).status().code(),
            absl::StatusCode::kInvalidArgument);
  SetBlasThreads(blas_before);
  at::set_num_threads(torch_before);
}

TEST(CpuThreadsTest, AutomaticBlasThreadsLeaveOneCoreAndKeepOne) {
  EXPECT_EQ(AutomaticBlasThreads(1), 1);
  EXPECT_EQ(AutomaticBlasThreads(2), 1);
  EXPECT_EQ(AutomaticBlasThreads(16), 15);
}

// Attention stays off cuDNN's per-shape plans where libtorch has that backend (2.5 and later here:
// the GPU machines' libtorch, where run_bench.sh runs this suite too); Debian's 1.13 has none.
TEST(TorchCompatTest, CudnnAttentionIsSwitchedOffWhereLibtorchHasIt) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 5)
  at::globalContext().setSDPUseCuDNN(true);
  setenv("SPEECHLLM_CUDNN_ATTENTION", "1", 1);
  EXPECT_FALSE(KeepAttentionOffCudnn());  // the variable keeps libtorch's choice
  EXPECT_TRUE(at::globalContext().userEnabledCuDNNSDP());
  unsetenv("SPEECHLLM_CUDNN_ATTENTION");
  EXPECT_TRUE(KeepAttentionOffCudnn());
  EXPECT_FALSE(at::globalContext().userEnabledCuDNNSDP());
#else
  EXPECT_FALSE(KeepAttentionOffCudnn());
#endif
}

}  // namespace
}  // namespace speechllm::engine
