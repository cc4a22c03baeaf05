#include "streaming/model_fingerprint.h"

#include <openssl/evp.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/model/safetensors.h"

namespace speechllm::streaming {
namespace {

bool FeedsTheEmbeddings(absl::string_view name) {
  return absl::StartsWith(name, "audio_tower.") || absl::StartsWith(name, "multi_modal_projector.");
}

// A streaming SHA-256 (OpenSSL's EVP interface), so that gigabytes of weights are never copied.
class Sha256 {
 public:
  Sha256() : context_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    EVP_DigestInit_ex(context_.get(), EVP_sha256(), nullptr);
  }
  void Update(absl::string_view bytes) {
    EVP_DigestUpdate(context_.get(), bytes.data(), bytes.size());
  }
  // A length before the bytes, so that no two sequences of fields hash alike.
  void Field(absl::string_view bytes) {
    Update(absl::StrCat(bytes.size(), ":"));
    Update(bytes);
  }
  std::string Hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(context_.get(), digest, &length);
    return absl::BytesToHexString(
        absl::string_view(reinterpret_cast<const char*>(digest), static_cast<size_t>(length)));
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> context_;
};

}  // namespace

absl::StatusOr<std::string> ModelFingerprint(const std::string& model_dir,
                                             absl::string_view projector) {
  absl::StatusOr<std::unique_ptr<engine::SafetensorsCheckpoint>> checkpoint =
      engine::SafetensorsCheckpoint::Open(model_dir);
  if (!checkpoint.ok()) return checkpoint.status();
  Sha256 sha;
  sha.Field("speechllm-model-fingerprint-v2");
  sha.Field(projector);
  {
    std::ifstream config(model_dir + "/config.json", std::ios::binary);
    std::ostringstream text;
    text << config.rdbuf();
    sha.Field(text.str());
  }
  int hashed = 0;
  for (const std::string& name : (*checkpoint)->Names()) {  // sorted
    if (!FeedsTheEmbeddings(name)) continue;
    absl::StatusOr<engine::TensorView> tensor = (*checkpoint)->Get(name);
    if (!tensor.ok()) return tensor.status();
    sha.Field(name);
    sha.Field(absl::StrCat(engine::DTypeName(tensor->dtype), " ", tensor->ShapeString()));
    sha.Field(absl::string_view(reinterpret_cast<const char*>(tensor->data), tensor->num_bytes));
    ++hashed;
  }
  if (hashed == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the checkpoint in ", model_dir,
                     " has no audio_tower.* or multi_modal_projector.* tensor to fingerprint"));
  }
  return sha.Hex();
}

std::string EmbeddingModelId(absl::string_view fingerprint, absl::string_view dtype,
                             absl::string_view device_kind) {
  return absl::StrCat(fingerprint, " numerics-v", kEmbeddingNumericsVersion, " ", dtype, " ",
                      device_kind);
}

}  // namespace speechllm::streaming
