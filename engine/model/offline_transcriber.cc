#include "engine/model/offline_transcriber.h"

#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "engine/model/audio_lengths.h"
#include "engine/model/audio_placeholder.h"
#include "engine/model/device_upload.h"
#include "engine/model/kv_pool.h"
#include "engine/model/qwen2_audio_model.h"
#include "engine/model/sampler.h"
#include "engine/status_macros.h"

namespace speechllm::engine {
namespace {

constexpr int64_t kBlockSize = 16;

double MillisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

struct OfflineTranscriber::Impl {
  std::unique_ptr<Qwen2AudioModel> model;
};

OfflineTranscriber::OfflineTranscriber(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OfflineTranscriber::~OfflineTranscriber() = default;

absl::StatusOr<std::unique_ptr<OfflineTranscriber>> OfflineTranscriber::Create(
    const std::string& model_dir, const RuntimeOptions& options) {
  auto impl = std::make_unique<Impl>();
  SPEECHLLM_ASSIGN_OR_RETURN(impl->model, Qwen2AudioModel::Load(model_dir, options));
  return std::unique_ptr<OfflineTranscriber>(new OfflineTranscriber(std::move(impl)));
}

const ModelConfig& OfflineTranscriber::config() const { return impl_->model->config(); }

absl::StatusOr<OfflineResult> OfflineTranscriber::Transcribe(absl::Span<const float> samples,
                                                             const std::vector<int64_t>& prompt_ids,
                                                             int max_new_tokens) {
  const Qwen2AudioModel& model = *impl_->model;
  const ModelConfig& config = model.config();
  if (max_new_tokens < 0) return absl::InvalidArgumentError("max_new_tokens must be >= 0");
  OfflineResult result;
  SPEECHLLM_ASSIGN_OR_RETURN(
      result.num_audio_tokens,
      AudioTokensForSamples(static_cast<int64_t>(samples.size()), config.features));
  SPEECHLLM_ASSIGN_OR_RETURN(
      result.prompt_ids,
      ExpandAudioPlaceholder(prompt_ids, config.audio_token_id, config.audio_bos_token_id,
                             config.audio_eos_token_id, result.num_audio_tokens));
  const int64_t prompt_length = static_cast<int64_t>(result.prompt_ids.size());
  if (prompt_length + max_new_tokens > config.text.max_position_embeddings) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt (", prompt_length, ") + max_new_tokens (", max_new_tokens,
                     ") exceeds max_position_embeddings ", config.text.max_position_embeddings));
  }
  try {
    c10::InferenceMode inference_mode;
    auto start = std::chrono::steady_clock::now();
    SPEECHLLM_ASSIGN_OR_RETURN(LogMelFeatures features,
                               model.log_mel().ExtractValidPrefix(samples));
    result.features_ms = MillisecondsSince(start);

    start = std::chrono::steady_clock::now();
    const at::Tensor audio = model.EncodeClip(features);
    result.encoder_ms = MillisecondsSince(start);

    start = std::chrono::steady_clock::now();
    SPEECHLLM_ASSIGN_OR_RETURN(at::Tensor embeddings, model.EmbedPrompt(result.prompt_ids, audio));
    const int64_t capacity = prompt_length + std::max(max_new_tokens, 1);
    KvPool kv(config.text, (capacity + kBlockSize - 1) / kBlockSize, kBlockSize, model.dtype(),
              model.device());
    DecoderSequence sequence;
    for (int64_t b = 0; b < kv.num_blocks(); ++b) sequence.block_table.push_back(b);
    sequence.num_new_tokens = prompt_length;
    DecoderBatch batch;
    batch.sequences = {sequence};
    batch.Prepare(kBlockSize, model.device(), model.decoder().attention_format());
    at::Tensor hidden = model.decoder().Forward(embeddings, batch, &kv);
    GreedyChoice choice =
        GreedySample(model.decoder().Logits(hidden.narrow(0, prompt_length - 1, 1)))[0];
    result.prefill_ms = MillisecondsSince(start);

    start = std::chrono::steady_clock::now();
    int64_t position = prompt_length;
    for (int step = 0; step < max_new_tokens; ++step) {
      result.generated_ids.push_back(choice.token_id);
      result.margins.push_back(choice.margin);
      result.log_probabilities.push_back(choice.log_probability);
      const auto& stops = config.stop_token_ids;
      if (std::find(stops.begin(), stops.end(), choice.token_id) != stops.end()) break;
      if (step + 1 == max_new_tokens) break;
      batch.sequences[0].start_position = position;
      batch.sequences[0].num_new_tokens = 1;
      batch.Prepare(kBlockSize, model.device(), model.decoder().attention_format());
      const at::Tensor token = UploadValues(std::vector<int64_t>{choice.token_id}, model.device());
      hidden = model.decoder().Forward(model.decoder().Embed(token), batch, &kv);
      choice = GreedySample(model.decoder().Logits(hidden))[0];
      ++position;
      ++result.decode_steps;
    }
    result.decode_ms = MillisecondsSince(start);
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("model failure: ", e.what_without_backtrace()));
  }
  return result;
}

}  // namespace speechllm::engine
