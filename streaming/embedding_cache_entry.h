// Embedding cache keys and entries (ARCHITECTURE.md 8): the SHA-256 key of a segment's exact-final
// input and the byte format of its projected rows (header, float32 rows, CRC-32C), and the
// streaming SHA-256 they and the model fingerprint share. Plain functions and a value class;
// called on the cache's worker threads (the fingerprint: the server's main thread at start-up).
#ifndef SPEECHLLM_STREAMING_EMBEDDING_CACHE_ENTRY_H_
#define SPEECHLLM_STREAMING_EMBEDDING_CACHE_ENTRY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX

namespace speechllm::streaming {

inline constexpr int kCacheKeyHexChars = 64;

// A streaming SHA-256 (OpenSSL's EVP interface): pieces fed to Update hash as their concatenation,
// so that large inputs (a checkpoint's weights, a segment's features) are never copied together.
class Sha256 {
 public:
  Sha256();
  void Update(absl::string_view bytes);
  // Lower-case hex of the digest; call once.
  std::string Hex();

 private:
  std::unique_ptr<evp_md_ctx_st, void (*)(evp_md_ctx_st*)> context_;
};

// Lower-case hex SHA-256 of `bytes`.
std::string Sha256Hex(absl::string_view bytes);

// The key of an exact final's embeddings: SHA-256 over the entry format's version, `model_id`
// (ModelFingerprint) and the segment's log-mel features as the encoder takes them (frame count,
// valid frames, the float32 values). The features carry the frontend's settings and the audio.
std::string EmbeddingCacheKey(absl::string_view model_id, const std::vector<float>& features,
                              int64_t num_frames, int64_t num_valid_frames);

struct CachedRows {
  std::vector<float> rows;  // [num_rows][hidden_size]
  int64_t num_rows = 0;
};

// Header (magic "SLLMEMB1", version, dtype float32, the key, rows, hidden size), the rows
// little-endian, then the CRC-32C of everything before it.
std::string EncodeCacheEntry(absl::string_view key, const std::vector<float>& rows,
                             int64_t num_rows, int64_t hidden_size);

// The rows of an entry written by EncodeCacheEntry for `key` and `hidden_size`. DATA_LOSS names
// what is wrong: a short or long entry, a bad magic, version or dtype, a checksum mismatch, another
// key or width.
absl::StatusOr<CachedRows> DecodeCacheEntry(absl::string_view entry, absl::string_view key,
                                            int64_t hidden_size);

}  // namespace speechllm::streaming

#endif  // SPEECHLLM_STREAMING_EMBEDDING_CACHE_ENTRY_H_
