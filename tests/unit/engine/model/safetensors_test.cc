// SafetensorsFile / SafetensorsCheckpoint: round trips, shards, and every malformed-file error.
#include "engine/model/safetensors.h"

#include <unistd.h>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "engine/model/safetensors_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace speechllm::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("safetensors_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override {
    speechllm::testing::RemoveTree(dir_.string());
    EXPECT_FALSE(fs::exists(dir_)) << dir_;
  }

  std::string WriteBytes(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  // A raw file: 8-byte header length + header text + data.
  std::string RawFile(const std::string& header, size_t data_bytes, uint64_t declared_length = 0) {
    const uint64_t length = declared_length != 0 ? declared_length : header.size();
    std::string out(8, '\0');
    std::memcpy(out.data(), &length, 8);
    return out + header + std::string(data_bytes, '\0');
  }

  fs::path dir_;
};

TEST_F(SafetensorsTest, RoundTripsEveryFloatDtype) {
  SafetensorsWriter writer;
  ASSERT_TRUE(writer.AddFloat32("a.f32", {2, 3}, {1, 2, 3, 4, 5, -6.5f}).ok());
  std::string bf16(4, '\0'), f16(4, '\0');
  const uint16_t bf[2] = {FloatToBFloat16(1.5f), FloatToBFloat16(-2.0f)};
  const uint16_t hf[2] = {0x3c00, 0xc500};  // 1.0, -5.0 in IEEE half
  std::memcpy(bf16.data(), bf, 4);
  std::memcpy(f16.data(), hf, 4);
  ASSERT_TRUE(writer.Add("b.bf16", DType::kBF16, {2}, bf16).ok());
  ASSERT_TRUE(writer.Add("c.f16", DType::kF16, {2}, f16).ok());
  ASSERT_TRUE(writer.AddInt32("d.i32", {1}, {-7}).ok());
  writer.SetMetadata("format", "pt");
  const std::string path = (dir_ / "x.safetensors").string();
  ASSERT_TRUE(writer.WriteFile(path).ok());

  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ((*file)->Names().size(), 4u);
  EXPECT_EQ((*file)->metadata().at("format"), "pt");
  auto a = (*file)->Get("a.f32");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(a->ToFloat32(), (std::vector<float>{1, 2, 3, 4, 5, -6.5f}));
  EXPECT_EQ((*file)->Get("b.bf16")->ToFloat32(), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ((*file)->Get("c.f16")->ToFloat32(), (std::vector<float>{1.0f, -5.0f}));
  EXPECT_EQ(*(*file)->Get("d.i32")->ToInt64(), (std::vector<int64_t>{-7}));
  EXPECT_FALSE((*file)->Get("a.f32")->ToInt64().ok());
}

TEST_F(SafetensorsTest, MissingTensorIsNotFoundAndNamed) {
  SafetensorsWriter writer;
  ASSERT_TRUE(writer.AddFloat32("present", {1}, {1}).ok());
  const std::string path = WriteBytes("m.safetensors", writer.Serialize());
  auto file = SafetensorsFile::Open(path);
  ASSERT_TRUE(file.ok());
  auto missing = (*file)->Get("absent.weight");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("absent.weight"));
}

TEST_F(SafetensorsTest, ShapeMismatchNamesBothShapes) {
  SafetensorsWriter writer;
  ASSERT_TRUE(writer.AddFloat32("w", {2, 2}, {1, 2, 3, 4}).ok());
  ASSERT_TRUE(writer.WriteFile((dir_ / "model.safetensors").string()).ok());
  auto checkpoint = SafetensorsCheckpoint::Open(dir_.string());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_TRUE((*checkpoint)->GetWithShape("w", {2, 2}).ok());
  auto bad = (*checkpoint)->GetWithShape("w", {4, 1});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("[2, 2]"));
  EXPECT_THAT(bad.status().message(), HasSubstr("[4, 1]"));
}

TEST_F(SafetensorsTest, TruncatedFileIsDataLoss) {
  SafetensorsWriter writer;
  ASSERT_TRUE(writer.AddFloat32("w", {64}, std::vector<float>(64, 1.0f)).ok());
  const std::string full = writer.Serialize();
  for (size_t cut : {full.size() - 1, full.size() - 100, size_t{20}, size_t{7}, size_t{0}}) {
    auto file = SafetensorsFile::Open(WriteBytes("t.safetensors", full.substr(0, cut)));
    ASSERT_FALSE(file.ok()) << cut;
    EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << cut << " " << file.status();
  }
}

TEST_F(SafetensorsTest, BadHeadersAreDataLoss) {
  struct Case {
    std::string bytes;
    const char* message;
  };
  const std::string ok_entry = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  for (const Case& c : {
           Case{RawFile("{not json", 8), "not valid JSON"},
           Case{RawFile("[1,2]", 8), "not a JSON object"},
           Case{RawFile(ok_entry, 8, 1ull << 40), "header length"},
           Case{RawFile(R"({"w":{"dtype":"F32","shape":[2]}})", 8), "lacks"},
           Case{RawFile(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8),
                "needs 12"},
           Case{RawFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "outside"},
           Case{RawFile(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
                "negative"},
           Case{RawFile(R"({"w":{"dtype":"F32","shape":"x","data_offsets":[0,8]}})", 8),
                "shape is not a list"},
           // Values JSON would convert were read loosely: 2 as [2], [2.9] as [2], 0.5 as 0.
           Case{RawFile(R"({"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", 8),
                "shape is not a list"},
           Case{RawFile(R"({"w":{"dtype":"F32","shape":[2.9],"data_offsets":[0,8]}})", 8),
                "not an integer"},
           Case{RawFile(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0.5,8.7]}})", 8),
                "data_offsets is not [begin, end]"},
           // Tensors must tile the data section: two sharing bytes, a hole, bytes left over.
           Case{RawFile(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                        8),
                "overlap or leave a gap"},
           Case{RawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8),
                "overlap or leave a gap"},
           // A name twice: JSON keeps the last, and the first one's bytes looked like a gap.
           Case{RawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                        R"("w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                        8),
                "names tensor \"w\" twice"},
           Case{RawFile(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8),
                "cover 4 of the data section's 8 bytes"},
           // Shapes whose bytes wrap a uint64 (2^62 x 4 = 0, 2^61+1 x 8 = 8) or whose element
           // count passes int64 were accepted with the bytes the wrap gave.
           Case{RawFile(R"({"w":{"dtype":"F32","shape":[4611686018427387904],)"
                        R"("data_offsets":[0,0]}})",
                        8),
                "shape overflows"},
           Case{RawFile(R"({"w":{"dtype":"F64","shape":[2305843009213693953],)"
                        R"("data_offsets":[0,8]}})",
                        8),
                "shape overflows"},
           Case{RawFile(R"({"w":{"dtype":"U8","shape":[4294967296,2147483648],)"
                        R"("data_offsets":[0,8]}})",
                        8),
                "shape overflows"},
       }) {
    auto file = SafetensorsFile::Open(WriteBytes("h.safetensors", c.bytes));
    ASSERT_FALSE(file.ok()) << c.message;
    EXPECT_EQ(file.status().code(), absl::StatusCode::kDataLoss) << file.status();
    EXPECT_THAT(file.status().message(), HasSubstr(c.message));
  }
  // A directory where a shard should be (an index naming ".."): not an mmap error.
  auto directory = SafetensorsFile::Open(dir_.string());
  EXPECT_EQ(directory.status().code(), absl::StatusCode::kDataLoss) << directory.status();
  EXPECT_THAT(directory.status().message(), HasSubstr("not a regular file"));
  auto odd = SafetensorsFile::Open(WriteBytes(
      "d.safetensors", RawFile(R"({"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8)));
  EXPECT_EQ(odd.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(odd.status().message(), HasSubstr("Q4"));
}

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  EXPECT_EQ(SafetensorsFile::Open((dir_ / "nope.safetensors").string()).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(SafetensorsCheckpoint::Open(dir_.string()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SafetensorsTest, ShardedIndexResolvesEveryTensor) {
  SafetensorsWriter one, two;
  ASSERT_TRUE(one.AddFloat32("x", {1}, {1}).ok());
  ASSERT_TRUE(two.AddFloat32("y", {2}, {2, 3}).ok());
  ASSERT_TRUE(one.WriteFile((dir_ / "s1.safetensors").string()).ok());
  ASSERT_TRUE(two.WriteFile((dir_ / "s2.safetensors").string()).ok());
  WriteBytes("model.safetensors.index.json",
             R"({"metadata":{},"weight_map":{"x":"s1.safetensors","y":"s2.safetensors"}})");
  auto checkpoint = SafetensorsCheckpoint::Open(dir_.string());
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ((*checkpoint)->Names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ((*checkpoint)->Get("y")->ToFloat32(), (std::vector<float>{2, 3}));
  EXPECT_EQ((*checkpoint)->files().size(), 2u);

  WriteBytes("model.safetensors.index.json", R"({"weight_map":{"x":"s2.safetensors"}})");
  auto wrong = SafetensorsCheckpoint::Open(dir_.string());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(wrong.status().message(), HasSubstr("does not contain"));

  WriteBytes("model.safetensors.index.json", R"({"weight_map":{"x":"missing.safetensors"}})");
  EXPECT_EQ(SafetensorsCheckpoint::Open(dir_.string()).status().code(),
            absl::StatusCode::kNotFound);

  WriteBytes("model.safetensors.index.json", "{");
  EXPECT_EQ(SafetensorsCheckpoint::Open(dir_.string()).status().code(),
            absl::StatusCode::kDataLoss);
}

TEST_F(SafetensorsTest, ReadsTheShardedFixture) {
  auto checkpoint = SafetensorsCheckpoint::Open(speechllm::testing::GoldenDir() + "/model");
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  EXPECT_EQ((*checkpoint)->files().size(), 5u);
  auto conv1 = (*checkpoint)->GetWithShape("audio_tower.conv1.weight", {64, 128, 3});
  ASSERT_TRUE(conv1.ok()) << conv1.status();
  EXPECT_EQ(conv1->dtype, DType::kF32);
  EXPECT_FALSE((*checkpoint)->Contains("audio_tower.layers.0.self_attn.k_proj.bias"));
}

TEST(TensorViewTest, BFloat16RoundingMatchesTorch) {
  EXPECT_EQ(FloatToBFloat16(1.0f), 0x3f80);
  EXPECT_EQ(BFloat16ToFloat(FloatToBFloat16(3.14159f)), 3.140625f);
  // Round half to even: 1 + 2^-8 lies halfway between two bfloat16 values.
  EXPECT_EQ(FloatToBFloat16(1.00390625f), 0x3f80);
}

}  // namespace
}  // namespace speechllm::engine
