#include "streaming/model_fingerprint.h"

#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/model/safetensors.h"
#include "streaming/embedding_cache_entry.h"

namespace speechllm::streaming {
namespace {

bool FeedsTheEmbeddings(absl::string_view name) {
  return absl::StartsWith(name, "audio_tower.") || absl::StartsWith(name, "multi_modal_projector.");
}

// A length before the bytes, so that no two sequences of fields hash alike.
void Field(Sha256& sha, absl::string_view bytes) {
  sha.Update(absl::StrCat(bytes.size(), ":"));
  sha.Update(bytes);
}

}  // namespace

absl::StatusOr<std::string> ModelFingerprint(const std::string& model_dir,
                                             absl::string_view projector) {
  absl::StatusOr<std::unique_ptr<engine::SafetensorsCheckpoint>> checkpoint =
      engine::SafetensorsCheckpoint::Open(model_dir);
  if (!checkpoint.ok()) return checkpoint.status();
  Sha256 sha;
  Field(sha, "speechllm-model-fingerprint-v2");
  Field(sha, projector);
  {
    std::ifstream config(model_dir + "/config.json", std::ios::binary);
    std::ostringstream text;
    text << config.rdbuf();
    Field(sha, text.str());
  }
  int hashed = 0;
  for (const std::string& name : (*checkpoint)->Names()) {  // sorted
    if (!FeedsTheEmbeddings(name)) continue;
    absl::StatusOr<engine::TensorView> tensor = (*checkpoint)->Get(name);
    if (!tensor.ok()) return tensor.status();
    Field(sha, name);
    Field(sha, absl::StrCat(engine::DTypeName(tensor->dtype), " ", tensor->ShapeString()));
    Field(sha, absl::string_view(reinterpret_cast<const char*>(tensor->data), tensor->num_bytes));
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
