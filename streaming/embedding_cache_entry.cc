#include "streaming/embedding_cache_entry.h"

#include <openssl/evp.h>

#include <cstring>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "streaming/crc32c.h"

namespace speechllm::streaming {
namespace {

constexpr absl::string_view kMagic = "SLLMEMB1";
constexpr uint32_t kFormatVersion = 1;
constexpr uint32_t kDtypeFloat32 = 1;
// magic, version, dtype, key, rows, hidden size
constexpr size_t kHeaderBytes = 8 + 4 + 4 + kCacheKeyHexChars + 8 + 8;
constexpr size_t kChecksumBytes = 4;

// Entries are little-endian; so is every host this builds for (x86-64, aarch64).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "cache entries assume a little-endian host");

// A fixed-width integer's bytes, as written and read back (little-endian on every host).
template <typename T>
void AppendBytesOf(T value, std::string* out) {
  out->append(reinterpret_cast<const char*>(&value), sizeof(T));
}

template <typename T>
T LoadBytesOf(const char* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

void AppendFloats(const float* values, size_t count, std::string* out) {
  static_assert(sizeof(float) == 4);
  out->append(reinterpret_cast<const char*>(values), count * 4);
}

}  // namespace

Sha256::Sha256() : context_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
  EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr);
}

void Sha256::Update(absl::string_view bytes) {
  EVP_DigestUpdate(context_.get(), bytes.data(), bytes.size());
}

std::string Sha256::Hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(context_.get(), digest, &length);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), static_cast<size_t>(length)));
}

std::string Sha256Hex(absl::string_view bytes) {
  Sha256 sha;
  sha.Update(bytes);
  return sha.Hex();
}

std::string EmbeddingCacheKey(absl::string_view model_id, const std::vector<float>& features,
                              int64_t num_frames, int64_t num_valid_frames) {
  std::string header = absl::StrCat("speechllm-embeddings-v", kFormatVersion, "\n", model_id, "\n");
  AppendBytesOf<uint64_t>(static_cast<uint64_t>(num_frames), &header);
  AppendBytesOf<uint64_t>(static_cast<uint64_t>(num_valid_frames), &header);
  Sha256 sha;
  sha.Update(header);
  // The features as they are (1.5 MB for 30 s), not copied after the header.
  static_assert(sizeof(float) == 4);
  sha.Update(absl::string_view(reinterpret_cast<const char*>(features.data()),
                               features.size() * sizeof(float)));
  return sha.Hex();
}

std::string EncodeCacheEntry(absl::string_view key, const std::vector<float>& rows,
                             int64_t num_rows, int64_t hidden_size) {
  std::string entry;
  entry.reserve(kHeaderBytes + rows.size() * 4 + kChecksumBytes);
  entry.append(kMagic.data(), kMagic.size());
  AppendBytesOf<uint32_t>(kFormatVersion, &entry);
  AppendBytesOf<uint32_t>(kDtypeFloat32, &entry);
  // Keys are kCacheKeyHexChars hex characters (Sha256Hex); anything else is cut or padded.
  std::string fixed_key(key.substr(0, kCacheKeyHexChars));
  fixed_key.resize(kCacheKeyHexChars, '0');
  entry.append(fixed_key);
  AppendBytesOf<uint64_t>(static_cast<uint64_t>(num_rows), &entry);
  AppendBytesOf<uint64_t>(static_cast<uint64_t>(hidden_size), &entry);
  AppendFloats(rows.data(), rows.size(), &entry);
  AppendBytesOf<uint32_t>(Crc32c(entry), &entry);
  return entry;
}

absl::StatusOr<CachedRows> DecodeCacheEntry(absl::string_view entry, absl::string_view key,
                                            int64_t hidden_size) {
  if (entry.size() < kHeaderBytes + kChecksumBytes) {
    return absl::DataLossError(absl::StrCat("cache entry of ", entry.size(), " bytes: too short"));
  }
  const absl::string_view body = entry.substr(0, entry.size() - kChecksumBytes);
  if (LoadBytesOf<uint32_t>(entry.data() + body.size()) != Crc32c(body)) {
    return absl::DataLossError("cache entry checksum mismatch");
  }
  if (body.substr(0, 8) != kMagic) return absl::DataLossError("cache entry: bad magic");
  const char* p = body.data() + 8;
  if (LoadBytesOf<uint32_t>(p) != kFormatVersion || LoadBytesOf<uint32_t>(p + 4) != kDtypeFloat32) {
    return absl::DataLossError("cache entry: unknown version or dtype");
  }
  if (body.substr(16, kCacheKeyHexChars) != key) {
    return absl::DataLossError("cache entry: written for another key");
  }
  p += 8 + kCacheKeyHexChars;
  const uint64_t num_rows = LoadBytesOf<uint64_t>(p);
  const uint64_t width = LoadBytesOf<uint64_t>(p + 8);
  const uint64_t payload = body.size() - kHeaderBytes;
  if (width != static_cast<uint64_t>(hidden_size) || num_rows == 0 ||
      num_rows > payload / 4 / width || num_rows * width * 4 != payload) {
    return absl::DataLossError(absl::StrCat("cache entry: ", num_rows, " rows of ", width, " in ",
                                            payload, " bytes (hidden size ", hidden_size, ")"));
  }
  CachedRows out;
  out.num_rows = static_cast<int64_t>(num_rows);
  out.rows.resize(num_rows * width);
  std::memcpy(out.rows.data(), body.data() + kHeaderBytes, payload);
  return out;
}

}  // namespace speechllm::streaming
