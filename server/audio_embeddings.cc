#include "server/audio_embeddings.h"

#include <cmath>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/grpc_status.h"

namespace speechllm::server {
namespace {

absl::Status Bad(const std::string& field, const std::string& reason, const std::string& message) {
  return WithField(WithReason(absl::InvalidArgumentError(message), reason),
                   absl::StrCat("embeddings.", field));
}

// Little-endian bytes to a host float (the wire order of AudioEmbeddings.data).
float LoadFloat32(const unsigned char* bytes) {
  const uint32_t bits = static_cast<uint32_t>(bytes[0]) | static_cast<uint32_t>(bytes[1]) << 8 |
                        static_cast<uint32_t>(bytes[2]) << 16 |
                        static_cast<uint32_t>(bytes[3]) << 24;
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

// bfloat16 is the upper half of a float32's bits.
float LoadBfloat16(const unsigned char* bytes) {
  const uint32_t bits = (static_cast<uint32_t>(bytes[0]) | static_cast<uint32_t>(bytes[1]) << 8)
                        << 16;
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

}  // namespace

absl::StatusOr<ParsedEmbeddings> ParseAudioEmbeddings(const v1::AudioEmbeddings& embeddings,
                                                      int64_t hidden_size, int64_t max_tokens) {
  if (embeddings.shape_size() != 2) {
    return Bad("shape", "EMBEDDING_SHAPE",
               absl::StrCat("shape must be [n_tokens, hidden_size] (rank 2), got rank ",
                            embeddings.shape_size()));
  }
  const int64_t num_tokens = embeddings.shape(0);
  const int64_t hidden = embeddings.shape(1);
  if (hidden != hidden_size) {
    return Bad(
        "shape", "EMBEDDING_SHAPE",
        absl::StrCat("shape[1] is ", hidden, " but the model's hidden size is ", hidden_size));
  }
  if (num_tokens < 1 || num_tokens > max_tokens) {
    return Bad("shape", "EMBEDDING_SHAPE",
               absl::StrCat("shape[0] (n_tokens) is ", num_tokens, "; it must be in [1, ",
                            max_tokens, "] (Limits.max_embedding_tokens)"));
  }
  int64_t value_bytes = 0;
  switch (embeddings.dtype()) {
    case v1::AudioEmbeddings::FLOAT32:
      value_bytes = 4;
      break;
    case v1::AudioEmbeddings::BFLOAT16:
      value_bytes = 2;
      break;
    default:
      return Bad("dtype", "EMBEDDING_DTYPE",
                 "dtype must be FLOAT32 or BFLOAT16 (DTYPE_UNSPECIFIED or unknown value)");
  }
  // Both factors are bounded above (max_tokens, hidden_size), so the product cannot overflow.
  const int64_t num_values = num_tokens * hidden;
  const int64_t expected_bytes = num_values * value_bytes;
  if (static_cast<int64_t>(embeddings.data().size()) != expected_bytes) {
    return Bad("data", "EMBEDDING_SIZE",
               absl::StrCat("data holds ", embeddings.data().size(), " bytes; shape [", num_tokens,
                            ", ", hidden, "] in ", value_bytes == 4 ? "FLOAT32" : "BFLOAT16",
                            " needs ", expected_bytes));
  }
  ParsedEmbeddings parsed;
  parsed.num_tokens = num_tokens;
  parsed.values.resize(static_cast<size_t>(num_values));
  const auto* bytes = reinterpret_cast<const unsigned char*>(embeddings.data().data());
  for (int64_t i = 0; i < num_values; ++i) {
    const float value = value_bytes == 4 ? LoadFloat32(bytes + 4 * i) : LoadBfloat16(bytes + 2 * i);
    if (!std::isfinite(value)) {
      return Bad("data", "EMBEDDING_NON_FINITE",
                 absl::StrCat("value ", i % hidden, " of row ", i / hidden, " is not finite"));
    }
    // Beyond float16's largest value a float16 model would hold inf; projected embeddings are
    // orders of magnitude smaller, so the bound holds for every dtype.
    if (std::fabs(value) > kMaxEmbeddingMagnitude) {
      return Bad(
          "data", "EMBEDDING_NON_FINITE",
          absl::StrCat("value ", i % hidden, " of row ", i / hidden, " (", value, ") is beyond +-",
                       kMaxEmbeddingMagnitude, ", which a float16 model cannot hold"));
    }
    parsed.values[static_cast<size_t>(i)] = value;
  }
  return parsed;
}

}  // namespace speechllm::server
