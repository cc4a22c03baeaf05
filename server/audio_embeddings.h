// ParseAudioEmbeddings: checks a Recognize request's AudioEmbeddings input (API.md 2.2 and 3:
// rank 2, [n_tokens, hidden_size], 1 <= n_tokens <= the limit, FLOAT32 or BFLOAT16, exact byte
// length, every value finite) before allocating anything, and widens it to float32 rows for
// Session::AcceptEmbeddings. A pure function; the Recognize handler thread calls it.
#ifndef SPEECHLLM_SERVER_AUDIO_EMBEDDINGS_H_
#define SPEECHLLM_SERVER_AUDIO_EMBEDDINGS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "speechllm/v1/speechllm.pb.h"

namespace speechllm::server {

struct ParsedEmbeddings {
  std::vector<float> values;  // row-major [num_tokens][hidden_size]
  int64_t num_tokens = 0;
};

// The largest magnitude a value may have: float16's largest finite value.
inline constexpr float kMaxEmbeddingMagnitude = 65504.0f;

// INVALID_ARGUMENT with reason EMBEDDING_SHAPE / EMBEDDING_DTYPE / EMBEDDING_SIZE /
// EMBEDDING_NON_FINITE (also for a value beyond kMaxEmbeddingMagnitude) and the field path
// ("embeddings.shape", ...) on any violation; a hidden-size mismatch names both sizes.
absl::StatusOr<ParsedEmbeddings> ParseAudioEmbeddings(const v1::AudioEmbeddings& embeddings,
                                                      int64_t hidden_size, int64_t max_tokens);

}  // namespace speechllm::server

#endif  // SPEECHLLM_SERVER_AUDIO_EMBEDDINGS_H_
