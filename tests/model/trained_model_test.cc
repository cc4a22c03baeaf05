// The bundled trained model (models/speechllm-asr-small, label model) really transcribes: three
// held-out clips (sentences and voices never used in training, tests/data/asr-small/clips.tsv) come
// out word for word, and the checkpoint re-saved in transformers-5's nested layout, split into two
// shards, gives the same greedy tokens (the golden tests show the loader and model compute what
// Hugging Face computes for such checkpoints).
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/str_split.h"
#include "engine/io/wav_reader.h"
#include "engine/model/offline_transcriber.h"
#include "engine/model/safetensors.h"
#include "engine/model/safetensors_writer.h"
#include "engine/model/tokenizer/prompt_builder.h"
#include "engine/model/tokenizer/tokenizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/test_util.h"

namespace speechllm::engine {
namespace {

namespace fs = std::filesystem;

const std::string kModel = std::string(SPEECHLLM_SOURCE_DIR) + "/models/speechllm-asr-small";
const std::string kClips = std::string(SPEECHLLM_SOURCE_DIR) + "/tests/data/asr-small";

struct Clip {
  std::string id, reference;
};

std::vector<Clip> Clips() {
  std::vector<Clip> clips;
  std::ifstream in(kClips + "/clips.tsv");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> fields = absl::StrSplit(line, '\t');
    if (fields.size() >= 2) clips.push_back({fields.front(), fields.back()});
  }
  return clips;
}

// The server's default prompt: the chat template around the audio with the trainer's instruction.
std::vector<int64_t> ChatPrompt(const tokenizer::Tokenizer& tokenizer) {
  auto builder = tokenizer::PromptBuilder::Create(&tokenizer);
  EXPECT_TRUE(builder.ok()) << builder.status();
  auto prompt =
      builder->BuildAudioRequest(tokenizer::PromptTemplate::kChat, "Transcribe the speech.");
  EXPECT_TRUE(prompt.ok()) << prompt.status();
  std::vector<int64_t> ids = prompt->prefix_ids;
  ids.push_back(builder->special_tokens().audio);
  ids.insert(ids.end(), prompt->suffix_ids.begin(), prompt->suffix_ids.end());
  return ids;
}

// Greedy ids of every clip with the model in `dir`.
std::vector<std::vector<int64_t>> TranscribeAll(const std::string& dir,
                                                const std::vector<int64_t>& prompt) {
  auto transcriber = OfflineTranscriber::Create(dir, RuntimeOptions());
  EXPECT_TRUE(transcriber.ok()) << transcriber.status();
  std::vector<std::vector<int64_t>> out;
  for (const Clip& clip : Clips()) {
    auto samples = ReadMonoWavFile(kClips + "/" + clip.id + ".wav", 16000);
    EXPECT_TRUE(samples.ok()) << samples.status();
    auto result = (*transcriber)->Transcribe(*samples, prompt, 64);
    EXPECT_TRUE(result.ok()) << result.status();
    out.push_back(result.ok() ? result->generated_ids : std::vector<int64_t>{});
  }
  return out;
}

TEST(TrainedModelTest, TranscribesHeldOutClipsWordForWord) {
  auto tokenizer = tokenizer::Tokenizer::FromDirectory(kModel);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const std::vector<Clip> clips = Clips();
  ASSERT_EQ(clips.size(), 3u);
  const auto generated = TranscribeAll(kModel, ChatPrompt(**tokenizer));
  for (size_t i = 0; i < clips.size(); ++i) {
    std::vector<int32_t> ids(generated[i].begin(), generated[i].end());
    auto text = (*tokenizer)->Decode(ids, {/*skip_special_tokens=*/true});
    ASSERT_TRUE(text.ok()) << text.status();
    std::printf("%s: \"%s\" (reference \"%s\")\n", clips[i].id.c_str(), text->c_str(),
                clips[i].reference.c_str());
    EXPECT_EQ(*text, clips[i].reference) << clips[i].id;
  }
}

TEST(TrainedModelTest, NestedShardedCopyGivesTheSameTokens) {
  auto tokenizer = tokenizer::Tokenizer::FromDirectory(kModel);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto checkpoint = SafetensorsCheckpoint::Open(kModel);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  const fs::path dir =
      fs::temp_directory_path() / ("trained_model_test_" + std::to_string(getpid()));
  fs::create_directories(dir);
  for (const char* file :
       {"config.json", "generation_config.json", "preprocessor_config.json", "tokenizer.json"}) {
    fs::copy_file(kModel + "/" + file, dir / file, fs::copy_options::overwrite_existing);
  }
  // Encoder and projector in shard 1, the decoder (as language_model.model.model.*) in shard 2.
  SafetensorsWriter shards[2];
  nlohmann::json weight_map;
  for (const std::string& name : (*checkpoint)->Names()) {
    const TensorView view = *(*checkpoint)->Get(name);
    const std::string prefix = "language_model.model.";
    const bool decoder = name.rfind("language_model.", 0) == 0;
    const std::string stored = name.rfind(prefix, 0) == 0
                                   ? "language_model.model.model." + name.substr(prefix.size())
                                   : name;
    const std::string shard =
        decoder ? "model-00002-of-00002.safetensors" : "model-00001-of-00002.safetensors";
    ASSERT_TRUE(shards[decoder ? 1 : 0]
                    .Add(stored, view.dtype, view.shape,
                         std::string(reinterpret_cast<const char*>(view.data), view.num_bytes))
                    .ok());
    weight_map[stored] = shard;
  }
  ASSERT_TRUE(shards[0].WriteFile((dir / "model-00001-of-00002.safetensors").string()).ok());
  ASSERT_TRUE(shards[1].WriteFile((dir / "model-00002-of-00002.safetensors").string()).ok());
  std::ofstream((dir / "model.safetensors.index.json").string())
      << nlohmann::json{{"metadata", nlohmann::json::object()}, {"weight_map", weight_map}}.dump();
  const std::vector<int64_t> prompt = ChatPrompt(**tokenizer);
  EXPECT_EQ(TranscribeAll(dir.string(), prompt), TranscribeAll(kModel, prompt));
  speechllm::testing::RemoveTree(dir.string());
}

}  // namespace
}  // namespace speechllm::engine
