// ModelFingerprint and the cache's model id: every byte of the encoder and projector weights, their
// names, dtypes and shapes, config.json and the projector variant change the fingerprint; the
// language model's weights do not (they never change the embeddings); the dtype and device the
// model runs in change the model id.
#include "streaming/model_fingerprint.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "engine/model/safetensors_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace speechllm::streaming {
namespace {

namespace fs = std::filesystem;

class ModelFingerprintTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "speechllm_fingerprint_" + std::to_string(getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ + "/config.json") << R"({"model_type": "qwen2_audio"})";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A two-shard checkpoint like the real one's layout: the audio tower and projector in one
  // shard, the language model in the other. `change` names a tensor whose last value differs.
  void WriteCheckpoint(const std::string& change = "",
                       std::vector<int64_t> projector_shape = {4, 8}) {
    auto values = [&](const std::string& name, size_t count) {
      std::vector<float> v(count, 0.25f);
      if (name == change) v.back() = 0.5f;
      return v;
    };
    engine::SafetensorsWriter audio;
    ASSERT_TRUE(
        audio.AddFloat32("audio_tower.conv1.weight", {16}, values("audio_tower.conv1.weight", 16))
            .ok());
    const size_t projector_count = static_cast<size_t>(projector_shape[0] * projector_shape[1]);
    ASSERT_TRUE(audio
                    .AddFloat32("multi_modal_projector.linear.weight", projector_shape,
                                values("multi_modal_projector.linear.weight", projector_count))
                    .ok());
    ASSERT_TRUE(audio.WriteFile(dir_ + "/model-00001-of-00002.safetensors").ok());
    engine::SafetensorsWriter text;
    ASSERT_TRUE(text.AddFloat32("language_model.lm_head.weight", {64},
                                values("language_model.lm_head.weight", 64))
                    .ok());
    ASSERT_TRUE(text.WriteFile(dir_ + "/model-00002-of-00002.safetensors").ok());
    std::ofstream(dir_ + "/model.safetensors.index.json")
        << R"({"weight_map": {"audio_tower.conv1.weight": "model-00001-of-00002.safetensors",)"
        << R"( "multi_modal_projector.linear.weight": "model-00001-of-00002.safetensors",)"
        << R"( "language_model.lm_head.weight": "model-00002-of-00002.safetensors"}})";
  }
  std::string Fingerprint(const std::string& projector = "linear") {
    absl::StatusOr<std::string> fingerprint = ModelFingerprint(dir_, projector);
    EXPECT_TRUE(fingerprint.ok()) << fingerprint.status();
    return fingerprint.value_or("");
  }

  std::string dir_;
};

TEST_F(ModelFingerprintTest, EveryEncoderAndProjectorByteCounts) {
  WriteCheckpoint();
  const std::string base = Fingerprint();
  EXPECT_EQ(base.size(), 64u);
  EXPECT_EQ(Fingerprint(), base);
  EXPECT_NE(Fingerprint("transformer"), base);
  // One value of the projector (a retrained projector over the same encoder), or of the tower.
  WriteCheckpoint("multi_modal_projector.linear.weight");
  EXPECT_NE(Fingerprint(), base);
  WriteCheckpoint("audio_tower.conv1.weight");
  EXPECT_NE(Fingerprint(), base);
  // The same bytes in another shape.
  WriteCheckpoint("", {8, 4});
  EXPECT_NE(Fingerprint(), base);
  // The language model's weights leave the embeddings, and so the fingerprint, as they were.
  WriteCheckpoint("language_model.lm_head.weight");
  EXPECT_EQ(Fingerprint(), base);
  WriteCheckpoint();
  std::ofstream(dir_ + "/config.json") << R"({"model_type": "qwen2_audio", "x": 1})";
  EXPECT_NE(Fingerprint(), base);
}

TEST_F(ModelFingerprintTest, ACheckpointWithoutAnEncoderOrNoneAtAllIsAnError) {
  EXPECT_EQ(ModelFingerprint(dir_, "linear").status().code(), absl::StatusCode::kNotFound);
  engine::SafetensorsWriter text;
  ASSERT_TRUE(text.AddFloat32("language_model.lm_head.weight", {4}, {1, 2, 3, 4}).ok());
  ASSERT_TRUE(text.WriteFile(dir_ + "/model.safetensors").ok());
  const absl::StatusOr<std::string> fingerprint = ModelFingerprint(dir_, "linear");
  EXPECT_EQ(fingerprint.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(fingerprint.status().message(), ::testing::HasSubstr("audio_tower"));
}

// Rows computed in bfloat16 on a card are not float32 rows of a CPU: replicas of the two never
// share entries, nor do two versions of the encoder's arithmetic.
TEST(EmbeddingModelIdTest, FollowsDtypeDeviceAndNumerics) {
  const std::string id = EmbeddingModelId("abc", "float32", "cpu");
  EXPECT_NE(id, EmbeddingModelId("abc", "bfloat16", "cpu"));
  EXPECT_NE(id, EmbeddingModelId("abc", "float32", "cuda"));
  EXPECT_NE(id, EmbeddingModelId("abd", "float32", "cpu"));
  EXPECT_THAT(id, ::testing::HasSubstr(absl::StrCat("numerics-v", kEmbeddingNumericsVersion)));
}

}  // namespace
}  // namespace speechllm::streaming
