// Recognize with precomputed AudioEmbeddings on the real server (API.md 2.2): Hugging Face's
// projector outputs of the fixture clips give its greedy tokens; BFLOAT16 equals FLOAT32 of the
// same rounded values; every malformed input is INVALID_ARGUMENT with its reason and field path,
// and the server keeps answering; GetCapabilities lists both dtypes.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "engine/model/safetensors.h"
#include "gtest/gtest.h"
#include "tests/integration/server/harness.h"

namespace speechllm::itest {
namespace {

constexpr int64_t kHidden = 64;  // the tiny model's hidden size

class EmbeddingsTest : public SharedServerTest<EmbeddingsTest> {
 protected:
  static grpc::Status Recognize(const v1::RecognizeRequest& request,
                                v1::RecognizeResponse* response) {
    return RecognizeOn(server_->stub(), request, response);
  }
};

// audio_embeds_a / _b of golden.safetensors: [n_tokens, 64] float32.
std::vector<float> GoldenEmbeddings(const std::string& clip) {
  auto file = engine::SafetensorsFile::Open(
      SourcePath("tests/data/qwen2-audio-tiny-golden/golden.safetensors"));
  if (!file.ok()) {
    ADD_FAILURE() << file.status();
    return {};
  }
  auto view = (*file)->Get(clip == "clip_a" ? "audio_embeds_a" : "audio_embeds_b");
  if (!view.ok()) {
    ADD_FAILURE() << view.status();
    return {};
  }
  return view->ToFloat32();
}

uint32_t Bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

// Little-endian bytes (the test machines are little-endian; the server decodes bytes explicitly).
std::string Float32Bytes(const std::vector<float>& values) {
  std::string bytes(values.size() * 4, '\0');
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

// Upper halves of the float32 bits (the values must already be bfloat16-exact).
std::string Bfloat16Bytes(const std::vector<float>& values) {
  std::string bytes;
  for (float value : values) {
    const uint32_t bits = Bits(value);
    bytes.push_back(static_cast<char>((bits >> 16) & 0xff));
    bytes.push_back(static_cast<char>(bits >> 24));
  }
  return bytes;
}

// Round to nearest even bfloat16 (finite inputs).
float RoundToBfloat16(float value) {
  uint32_t bits = Bits(value);
  bits = (bits + 0x7fff + ((bits >> 16) & 1)) & 0xffff0000u;
  float rounded;
  std::memcpy(&rounded, &bits, sizeof(rounded));
  return rounded;
}

v1::RecognizeRequest Request(const std::vector<float>& values, v1::AudioEmbeddings::DType dtype) {
  v1::RecognizeRequest request;
  request.mutable_config()->mutable_results()->set_token_ids(true);
  v1::AudioEmbeddings* embeddings = request.mutable_embeddings();
  embeddings->add_shape(static_cast<int64_t>(values.size()) / kHidden);
  embeddings->add_shape(kHidden);
  embeddings->set_dtype(dtype);
  embeddings->set_data(dtype == v1::AudioEmbeddings::BFLOAT16 ? Bfloat16Bytes(values)
                                                              : Float32Bytes(values));
  return request;
}

std::vector<int64_t> FinalIds(const v1::RecognizeResponse& response) {
  if (response.results_size() != 1) {
    ADD_FAILURE() << response.results_size() << " results";
    return {};
  }
  EXPECT_TRUE(response.results(0).is_final());
  return {response.results(0).token_ids().begin(), response.results(0).token_ids().end()};
}

TEST_F(EmbeddingsTest, HuggingFaceProjectorOutputsGiveItsGreedyTokens) {
  for (const std::string clip : {"clip_a", "clip_b"}) {
    SCOPED_TRACE(clip);
    const std::vector<float> values = GoldenEmbeddings(clip);
    ASSERT_FALSE(values.empty());
    v1::RecognizeResponse response;
    const grpc::Status status = Recognize(Request(values, v1::AudioEmbeddings::FLOAT32), &response);
    ASSERT_TRUE(status.ok()) << Describe(status);
    const std::vector<int64_t> ids = FinalIds(response);
    const double duration =
        response.audio_duration().seconds() + response.audio_duration().nanos() * 1e-9;
    std::printf("[embeddings] %s: %zu tokens (%.2f s) -> %s\n", clip.c_str(),
                values.size() / kHidden, duration, Ids(ids).c_str());
    EXPECT_EQ(Ids(ids), Ids(GoldenTokens(clip))) << "differs from the HF greedy ids";
    EXPECT_NEAR(duration, 0.04 * static_cast<double>(values.size() / kHidden), 1e-6);
  }
}

TEST_F(EmbeddingsTest, Bfloat16EqualsFloat32OfTheSameValues) {
  std::vector<float> values = GoldenEmbeddings("clip_a");
  ASSERT_FALSE(values.empty());
  double max_rounding = 0;
  for (float& value : values) {
    const float rounded = RoundToBfloat16(value);
    max_rounding = std::max(max_rounding, std::fabs(static_cast<double>(rounded - value)));
    value = rounded;
  }
  v1::RecognizeResponse as_float32, as_bfloat16;
  ASSERT_TRUE(Recognize(Request(values, v1::AudioEmbeddings::FLOAT32), &as_float32).ok());
  ASSERT_TRUE(Recognize(Request(values, v1::AudioEmbeddings::BFLOAT16), &as_bfloat16).ok());
  const std::vector<int64_t> ids = FinalIds(as_float32);
  std::printf("[embeddings] bf16-rounded clip_a (max rounding %.3g): %s\n", max_rounding,
              Ids(ids).c_str());
  EXPECT_FALSE(ids.empty());
  EXPECT_EQ(Ids(FinalIds(as_bfloat16)), Ids(ids));
}

TEST_F(EmbeddingsTest, MalformedEmbeddingsAreInvalidArgument) {
  const std::vector<float> values = GoldenEmbeddings("clip_a");
  ASSERT_FALSE(values.empty());
  const v1::RecognizeRequest good = Request(values, v1::AudioEmbeddings::FLOAT32);
  struct Case {
    std::string what, reason, field, message_part;
    v1::RecognizeRequest request;
  };
  std::vector<Case> cases;
  auto add = [&](std::string what, std::string reason, std::string field, std::string part,
                 auto&& change) {
    Case c{std::move(what), std::move(reason), std::move(field), std::move(part), good};
    change(c.request.mutable_embeddings());
    cases.push_back(std::move(c));
  };
  add("rank 1", "EMBEDDING_SHAPE", "embeddings.shape", "rank 1",
      [](v1::AudioEmbeddings* e) { e->mutable_shape()->RemoveLast(); });
  add("rank 3", "EMBEDDING_SHAPE", "embeddings.shape", "rank 3",
      [](v1::AudioEmbeddings* e) { e->add_shape(1); });
  add("hidden 65", "EMBEDDING_SHAPE", "embeddings.shape", "65 but the model's hidden size is 64",
      [](v1::AudioEmbeddings* e) { e->set_shape(1, 65); });
  add("0 tokens", "EMBEDDING_SHAPE", "embeddings.shape", "[1, 750]",
      [](v1::AudioEmbeddings* e) { e->set_shape(0, 0); });
  add("-84 tokens", "EMBEDDING_SHAPE", "embeddings.shape", "[1, 750]",
      [](v1::AudioEmbeddings* e) { e->set_shape(0, -84); });
  add("751 tokens", "EMBEDDING_SHAPE", "embeddings.shape", "[1, 750]",
      [](v1::AudioEmbeddings* e) { e->set_shape(0, 751); });
  add("huge tokens", "EMBEDDING_SHAPE", "embeddings.shape", "[1, 750]",
      [](v1::AudioEmbeddings* e) { e->set_shape(0, std::numeric_limits<int64_t>::max()); });
  add("dtype unset", "EMBEDDING_DTYPE", "embeddings.dtype", "FLOAT32 or BFLOAT16",
      [](v1::AudioEmbeddings* e) { e->set_dtype(v1::AudioEmbeddings::DTYPE_UNSPECIFIED); });
  add("dtype 7", "EMBEDDING_DTYPE", "embeddings.dtype", "FLOAT32 or BFLOAT16",
      [](v1::AudioEmbeddings* e) { e->set_dtype(static_cast<v1::AudioEmbeddings::DType>(7)); });
  add("one byte short", "EMBEDDING_SIZE", "embeddings.data", "needs 21504",
      [](v1::AudioEmbeddings* e) { e->mutable_data()->pop_back(); });
  add("BFLOAT16 with float32 bytes", "EMBEDDING_SIZE", "embeddings.data", "needs 10752",
      [](v1::AudioEmbeddings* e) { e->set_dtype(v1::AudioEmbeddings::BFLOAT16); });
  add("NaN", "EMBEDDING_NON_FINITE", "embeddings.data", "value 3 of row 2",
      [](v1::AudioEmbeddings* e) {
        const float nan = std::numeric_limits<float>::quiet_NaN();
        std::memcpy(e->mutable_data()->data() + 4 * (2 * kHidden + 3), &nan, 4);
      });
  add("bfloat16 infinity", "EMBEDDING_NON_FINITE", "embeddings.data", "value 0 of row 83",
      [&values](v1::AudioEmbeddings* e) {
        std::vector<float> rounded(values.size());
        for (size_t i = 0; i < values.size(); ++i) rounded[i] = RoundToBfloat16(values[i]);
        rounded[83 * kHidden] = std::numeric_limits<float>::infinity();
        e->set_dtype(v1::AudioEmbeddings::BFLOAT16);
        e->set_data(Bfloat16Bytes(rounded));
      });
  add("float16 overflow", "EMBEDDING_NON_FINITE", "embeddings.data", "value 1 of row 0",
      [](v1::AudioEmbeddings* e) {
        const float large = 70000.0f;  // finite in float32, inf in a float16 model
        std::memcpy(e->mutable_data()->data() + 4 * 1, &large, 4);
      });
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    v1::RecognizeResponse response;
    const grpc::Status status = Recognize(c.request, &response);
    std::printf("[embeddings] %-28s -> %s\n", c.what.c_str(), Describe(status).c_str());
    ExpectError(status, grpc::StatusCode::INVALID_ARGUMENT, c.reason);
    EXPECT_EQ(ParseDetails(status).fields, std::vector<std::string>{c.field});
    EXPECT_NE(status.error_message().find(c.message_part), std::string::npos)
        << status.error_message();
  }
  // The server is unharmed: the well-formed request still gives the golden tokens.
  v1::RecognizeResponse response;
  ASSERT_TRUE(Recognize(good, &response).ok());
  EXPECT_EQ(Ids(FinalIds(response)), Ids(GoldenTokens("clip_a")));
}

TEST_F(EmbeddingsTest, CapabilitiesListBothDtypes) {
  grpc::ClientContext context;
  v1::Capabilities caps;
  ASSERT_TRUE(server_->stub()->GetCapabilities(&context, {}, &caps).ok());
  ASSERT_EQ(caps.models_size(), 1);
  std::vector<int> dtypes(caps.models(0).embedding_dtypes().begin(),
                          caps.models(0).embedding_dtypes().end());
  EXPECT_EQ(dtypes,
            (std::vector<int>{v1::AudioEmbeddings::FLOAT32, v1::AudioEmbeddings::BFLOAT16}));
  EXPECT_EQ(caps.models(0).hidden_size(), static_cast<uint32_t>(kHidden));
  EXPECT_EQ(caps.limits().max_embedding_tokens(), 750u);
}

}  // namespace
}  // namespace speechllm::itest
