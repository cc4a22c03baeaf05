#include "engine/torch_model_runner.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <exception>
#include <new>
#include <optional>

#include "absl/strings/str_cat.h"
#include "engine/model/audio_lengths.h"
#include "engine/model/decode_graphs.h"
#include "engine/model/device_memory.h"
#include "engine/model/device_upload.h"
#include "engine/model/kv_pool.h"
#include "engine/model/qwen2_audio_model.h"
#include "engine/model/sampler.h"
#include "engine/status_macros.h"
#include "engine/torch_runner_state.h"

namespace speechllm::engine {
namespace {

// Frame-major [frames][num_mel_bins] floats -> [num_mel_bins, frames] on `device`.
at::Tensor MelTensor(const std::vector<float>& frames, int64_t num_mel_bins, at::Device device) {
  const int64_t num_frames = static_cast<int64_t>(frames.size()) / num_mel_bins;
  return UploadTensor(at::from_blob(const_cast<float*>(frames.data()), {num_frames, num_mel_bins},
                                    at::kFloat),
                      device, at::kFloat)
      .transpose(0, 1);
}

// A row's choice as the scheduler reads it. Without a scored id (the row is its item's last, or a
// decode graph's) the scored log-probability is the choice's own.
TokenChoice ToTokenChoice(const GreedyChoice& choice) {
  return TokenChoice{choice.token_id, choice.margin, choice.log_probability,
                     choice.scored_log_probability};
}

}  // namespace

struct TorchModelRunner::Impl {
  std::unique_ptr<Qwen2AudioModel> model;
  std::unique_ptr<KvPool> kv;
  int64_t block_size = 16;
  int64_t num_usable_blocks = 0;   // the pool's blocks less the decode graphs' scratch block
  int64_t free_memory_bytes = -1;  // the device's, after the pool and the graphs (Create)
  bool batched_encoder = false;    // encoder passes (conv stems included) batched across items
  bool sync_stage_times = false;   // TorchRunnerConfig::sync_stage_times
  std::unique_ptr<DecodeGraphs> graphs;  // null: every step runs eagerly
  std::string graphs_summary = "CUDA decode graphs: off";
  RunnerStates states;

  void Encode(const std::vector<EncodeItem>& items, StepResult* result);
  void Decode(const StepPlan& plan, StepResult* result);
  // A step of decode tokens alone (one text token with its logit per sequence) through a CUDA
  // graph; false when there are no graphs or the step does not fit one.
  bool DecodeWithGraph(const StepPlan& plan, StepResult* result);
};

TorchModelRunner::TorchModelRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TorchModelRunner::~TorchModelRunner() = default;

absl::StatusOr<std::unique_ptr<TorchModelRunner>> TorchModelRunner::Create(
    const std::string& model_dir, const TorchRunnerConfig& config) {
  auto impl = std::make_unique<Impl>();
  SPEECHLLM_ASSIGN_OR_RETURN(impl->model, Qwen2AudioModel::Load(model_dir, config.runtime));
  return Finish(std::move(impl), config);
}

absl::StatusOr<std::unique_ptr<TorchModelRunner>> TorchModelRunner::CreateRandom(
    const ModelConfig& model_config, const TorchRunnerConfig& config, uint64_t seed) {
  auto impl = std::make_unique<Impl>();
  SPEECHLLM_ASSIGN_OR_RETURN(impl->model,
                             Qwen2AudioModel::CreateRandom(model_config, config.runtime, seed));
  return Finish(std::move(impl), config);
}

absl::StatusOr<std::unique_ptr<TorchModelRunner>> TorchModelRunner::Finish(
    std::unique_ptr<Impl> impl, const TorchRunnerConfig& config) {
  if (config.block_size < 1) return absl::InvalidArgumentError("block_size must be >= 1");
  impl->block_size = config.block_size;
  impl->batched_encoder = config.batched_encoder.value_or(impl->model->device().is_cuda());
  impl->sync_stage_times = config.sync_stage_times;
  try {
    c10::InferenceMode inference_mode;
    const TextConfig& text = impl->model->config().text;
    const int64_t bytes_per_token = 2ll * text.num_layers * text.num_kv_heads * text.head_dim *
                                    static_cast<int64_t>(c10::elementSize(impl->model->dtype()));
    int64_t blocks = config.num_kv_blocks;
    if (blocks <= 0) blocks = config.kv_cache_bytes / (bytes_per_token * config.block_size);
    if (blocks < 1) return absl::InvalidArgumentError("KV cache budget holds no block");
    const at::Device device = impl->model->device();
    const bool use_graphs = config.cuda_graph_max_batch > 0 && DecodeGraphs::Supported(device);
    impl->num_usable_blocks = blocks;
    // The graphs' padding rows write to one extra block that the scheduler never sees.
    impl->kv = std::make_unique<KvPool>(text, blocks + (use_graphs ? 1 : 0), config.block_size,
                                        impl->model->dtype(), device);
    if (use_graphs) {
      const int64_t table_width = std::min<int64_t>(
          blocks, (text.max_position_embeddings + config.block_size - 1) / config.block_size);
      impl->graphs = std::make_unique<DecodeGraphs>(&impl->model->decoder(), impl->kv.get(),
                                                    /*scratch_block=*/blocks, table_width,
                                                    config.cuda_graph_max_batch);
      const absl::Time start = absl::Now();
      const absl::Status captured = impl->graphs->CaptureAll();
      if (captured.ok()) {
        impl->graphs_summary = absl::StrCat(
            "CUDA graphs: ", impl->graphs->num_graphs(), " decode buckets up to batch ",
            impl->graphs->max_batch(), ", captured in ",
            absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1))));
      } else {
        impl->graphs_summary = absl::StrCat("CUDA decode graphs: off (", captured.message(), ")");
        impl->graphs.reset();
      }
    }
    if (impl->batched_encoder) {  // exact finals replay the encoder's whole-segment graphs
      const absl::Time start = absl::Now();
      const AudioEncoder& encoder = impl->model->encoder();
      const absl::Status captured = encoder.CaptureSegmentGraphs();
      if (!captured.ok()) {
        absl::StrAppend(&impl->graphs_summary, "; ", captured.message());
      } else if (encoder.NumSegmentGraphs() > 0) {
        absl::StrAppend(
            &impl->graphs_summary, "; encoder: ", encoder.NumSegmentGraphs(),
            " whole-segment graphs, captured in ",
            absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1))));
      }
    }
    impl->free_memory_bytes = FreeMemoryBytes(device);
  } catch (const c10::Error& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate the KV cache: ", e.what_without_backtrace()));
  } catch (const std::bad_alloc& e) {
    return absl::ResourceExhaustedError(absl::StrCat("cannot allocate the KV cache: ", e.what()));
  }
  return std::unique_ptr<TorchModelRunner>(new TorchModelRunner(std::move(impl)));
}

const ModelConfig& TorchModelRunner::config() const { return impl_->model->config(); }
int64_t TorchModelRunner::num_kv_blocks() const { return impl_->num_usable_blocks; }
int64_t TorchModelRunner::block_size() const { return impl_->block_size; }
int64_t TorchModelRunner::encoder_kv_bytes_per_position() const {
  const AudioEncoderConfig& audio = impl_->model->config().audio;
  return int64_t{2} * audio.num_layers * audio.d_model *
         static_cast<int64_t>(c10::elementSize(impl_->model->dtype()));
}
int64_t TorchModelRunner::free_memory_bytes() const { return impl_->free_memory_bytes; }
int64_t TorchModelRunner::encoder_kv_positions_used() const {
  int64_t positions = 0;
  for (const auto& [id, state] : impl_->states) positions += state.encoder_cache.num_positions;
  return positions;
}
void TorchModelRunner::ResetSequence(SequenceId id) { impl_->states.erase(id); }
const std::string& TorchModelRunner::graphs_summary() const { return impl_->graphs_summary; }
const std::string& TorchModelRunner::threads_summary() const {
  return impl_->model->threads_summary();
}

void TorchModelRunner::Impl::Encode(const std::vector<EncodeItem>& items, StepResult* result) {
  const ModelConfig& config = model->config();
  const int64_t mels = config.audio.num_mel_bins;
  // Every encoder item of the step in one batched pass (row-wise layers on all rows at once).
  // Precomputed embeddings (SegmentEnd::audio_embeddings) skip the encoder; placed below.
  auto precomputed = [](const EncodeItem& item) {
    return item.kind == EncodeItem::Kind::kFull && item.segment->num_audio_embeddings > 0;
  };
  // With batched passes (CUDA) the conv stems of all items run as one im2col pass
  // (AudioEncoder::ConvStems): two GEMMs instead of two convolutions per item, and no per-shape
  // convolution plans.
  std::vector<ConvStemInput> stems;
  std::vector<int64_t> stem_rows;  // positions each item keeps
  std::vector<EncoderWork> work;
  for (const EncodeItem& item : items) {
    if (precomputed(item)) continue;
    RunnerSequenceState& state = states[item.id];
    EncoderWork w;
    ConvStemInput stem;
    if (item.kind == EncodeItem::Kind::kFull) {
      const SegmentEnd& end = *item.segment;
      state.encoder_cache = EncoderKvCache{};
      state.audio.clear();
      state.audio_rows = 0;
      stem = {ConvStemInput::Kind::kSegment, end.features.data(),
              static_cast<int64_t>(end.features.size()) / mels};
      stem_rows.push_back(ConvOutputLength(end.num_valid_frames));
      if (!batched_encoder) {
        w.conv = model->encoder()
                     .ConvStemOf(MelTensor(end.features, mels, model->device()))
                     .narrow(0, 0, stem_rows.back());
      }
    } else {
      const EncoderChunk& chunk = *item.chunk;
      stem = {chunk.first_position == 0 ? ConvStemInput::Kind::kFirstBlock
                                        : ConvStemInput::Kind::kLaterBlock,
              chunk.frames.data(), static_cast<int64_t>(chunk.frames.size()) / mels};
      stem_rows.push_back(chunk.end_position - chunk.first_position);
      if (!batched_encoder) {
        w.conv = model->encoder().ConvBlock(MelTensor(chunk.frames, mels, model->device()),
                                            chunk.first_position, chunk.end_position);
      }
      w.first_position = chunk.first_position;
      w.cache = &state.encoder_cache;
    }
    stems.push_back(stem);
    work.push_back(std::move(w));
  }
  if (batched_encoder && !work.empty()) {
    const std::vector<at::Tensor> conv = model->encoder().ConvStems(stems, model->device());
    for (size_t i = 0; i < work.size(); ++i) {
      TORCH_CHECK(conv[i].size(0) >= stem_rows[i], "conv stem of ", conv[i].size(0), " positions, ",
                  stem_rows[i], " expected");
      work[i].conv = conv[i].narrow(0, 0, stem_rows[i]);
    }
  }
  std::vector<at::Tensor> encoded;
  at::Tensor all;
  if (!work.empty()) {
    encoded = model->encoder().EncodeBatch(
        work, nullptr, batched_encoder ? EncoderPass::kGraphs : EncoderPass::kPerItem);
    all = model->projector()
              .Forward(encoded.size() == 1 ? encoded[0] : at::cat(encoded, 0))
              .to(model->decoder().dtype());
  }
  int64_t row = 0;
  size_t next_encoded = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const EncodeItem& item = items[i];
    RunnerSequenceState& state = states[item.id];
    if (precomputed(item)) {  // the rows replace the segment's audio
      const SegmentEnd& end = *item.segment;
      state.encoder_cache = EncoderKvCache{};
      state.audio = {UploadTensor(
          at::from_blob(const_cast<float*>(end.audio_embeddings.data()),
                        {end.num_audio_embeddings, config.text.hidden_size}, at::kFloat),
          model->device(), model->decoder().dtype())};
      state.audio_rows = end.num_audio_embeddings;
    } else {
      const int64_t rows = encoded[next_encoded++].size(0);
      if (rows > 0) state.audio.push_back(all.narrow(0, row, rows));
      if (rows > 0 && item.kind == EncodeItem::Kind::kFull && item.segment->return_embeddings) {
        // For the embedding cache: the rows in the decoder's dtype, widened to float32 (exact), so
        // that a hit's upload gives back the very values a miss prefilled.
        const at::Tensor host = all.narrow(0, row, rows).to(at::kCPU, at::kFloat).contiguous();
        result->returned_embeddings.resize(items.size());
        result->returned_embeddings[i].assign(host.data_ptr<float>(),
                                              host.data_ptr<float>() + host.numel());
      }
      state.audio_rows += rows;
      row += rows;
    }
    result->audio_tokens.push_back(state.audio_rows);
  }
}

bool TorchModelRunner::Impl::DecodeWithGraph(const StepPlan& plan, StepResult* result) {
  if (graphs == nullptr) return false;
  std::vector<int64_t> token_ids;
  std::vector<DecoderSequence> sequences;
  for (const PrefillItem& item : plan.prefills) {
    if (item.token_ids.size() != 1 || item.first_logit_index > 0 || item.num_audio_rows > 0)
      return false;
    token_ids.push_back(item.token_ids[0]);
    sequences.push_back(DecoderSequence{1, item.start_position, item.block_table});
  }
  if (!graphs->Accepts(sequences)) return false;
  const at::Tensor logits = graphs->Run(token_ids, sequences);
  const absl::Time read = absl::Now();
  const std::vector<GreedyChoice> choices = GreedySample(logits);
  result->wait_time += absl::Now() - read;
  for (const GreedyChoice& choice : choices) result->choices.push_back({ToTokenChoice(choice)});
  result->decode_graph = true;
  return true;
}

void TorchModelRunner::Impl::Decode(const StepPlan& plan, StepResult* result) {
  if (DecodeWithGraph(plan, result)) return;
  const at::Device device = model->device();
  // One embedding lookup for every new token of the step; audio rows are then overwritten per
  // sequence from its audio store (their positions are known here, on the host).
  DecoderBatch batch;
  std::vector<int64_t> all_ids;
  for (const PrefillItem& item : plan.prefills) {
    all_ids.insert(all_ids.end(), item.token_ids.begin(), item.token_ids.end());
    batch.sequences.push_back(DecoderSequence{static_cast<int64_t>(item.token_ids.size()),
                                              item.start_position, item.block_table});
  }
  at::Tensor embeddings = model->decoder().Embed(UploadValues(all_ids, device));
  // Every audio row of the step in one copy: the rows' places and their embeddings, gathered as
  // views of the sequences' audio pieces.
  std::vector<int64_t> audio_rows;
  std::vector<at::Tensor> audio_parts;
  int64_t first_row = 0;
  for (const PrefillItem& item : plan.prefills) {
    const int64_t count = item.num_audio_rows;
    TORCH_CHECK(count >= 0 && count <= static_cast<int64_t>(item.token_ids.size()),
                "prefill of sequence ", item.id, " has ", count, " audio rows for ",
                item.token_ids.size(), " tokens");
    for (int64_t i = 0; i < count; ++i) audio_rows.push_back(first_row + i);
    first_row += static_cast<int64_t>(item.token_ids.size());
    if (count == 0) continue;
    auto it = states.find(item.id);
    TORCH_CHECK(it != states.end() && it->second.audio_rows >= item.first_audio_row + count,
                "sequence ", item.id, " lacks the audio embeddings its prompt needs");
    it->second.AppendAudio(item.first_audio_row, count, &audio_parts);
  }
  if (!audio_rows.empty()) {
    embeddings.index_copy_(0, UploadValues(audio_rows, device),
                           audio_parts.size() == 1 ? audio_parts[0] : at::cat(audio_parts, 0));
  }
  batch.Prepare(block_size, device, model->decoder().attention_format());
  const at::Tensor hidden = model->decoder().Forward(embeddings, batch, kv.get());
  // Logits only for the rows that need a choice, in one lm_head call.
  // Each row also scores the item's next token (the draft token it verifies).
  std::vector<int64_t> rows, next_ids;
  int64_t row = 0;
  for (const PrefillItem& item : plan.prefills) {
    const int64_t size = static_cast<int64_t>(item.token_ids.size());
    for (int64_t i = std::max<int64_t>(item.first_logit_index, 0); i < size; ++i) {
      rows.push_back(row + i);
      next_ids.push_back(i + 1 < size ? item.token_ids[i + 1] : -1);
    }
    row += size;
  }
  std::vector<GreedyChoice> choices;
  if (!rows.empty()) {
    const at::Tensor index = UploadValues(rows, device);
    const at::Tensor logits = model->decoder().Logits(hidden.index_select(0, index));
    const absl::Time read = absl::Now();
    choices = GreedySample(logits, next_ids);
    result->wait_time += absl::Now() - read;
  }
  size_t next = 0;
  for (const PrefillItem& item : plan.prefills) {
    std::vector<TokenChoice> item_choices;
    for (int64_t i = std::max<int64_t>(item.first_logit_index, 0);
         i < static_cast<int64_t>(item.token_ids.size()); ++i, ++next) {
      item_choices.push_back(ToTokenChoice(choices[next]));
    }
    result->choices.push_back(std::move(item_choices));
  }
}

absl::StatusOr<StepResult> TorchModelRunner::Execute(const StepPlan& plan) {
  StepResult result;
  // A failed step leaves the sequences' states as they were (ModelRunner::Execute).
  std::optional<RunnerStateSnapshot> before;
  try {
    if (!plan.encodes.empty()) before.emplace(impl_->states, plan.encodes);
    c10::InferenceMode inference_mode;
    impl_->model->blas_threads().Apply(plan.live_sequences);
    for (const auto& [source, destination] : plan.block_copies)
      impl_->kv->CopyBlock(source, destination);
    const absl::Time start = absl::Now();
    if (!plan.encodes.empty()) {
      impl_->Encode(plan.encodes, &result);
      // A host read waits for the work queued on the device so far.
      if (impl_->sync_stage_times) {
        at::zeros({1}, at::TensorOptions().device(impl_->model->device())).item<float>();
      }
    }
    const absl::Time encoded = absl::Now();
    if (!plan.prefills.empty()) impl_->Decode(plan, &result);
    result.encoder_time = encoded - start;
    result.decoder_time = absl::Now() - encoded;
  } catch (const c10::Error& e) {
    if (before.has_value()) before->Restore(&impl_->states);
    return absl::InternalError(absl::StrCat("model step failed: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    // Anything else the model path throws (std::bad_alloc from a host container, say) fails this
    // step too, instead of ending the engine thread and the process (API.md 4.6).
    if (before.has_value()) before->Restore(&impl_->states);
    return absl::InternalError(absl::StrCat("model step failed: ", e.what()));
  }
  return result;
}

}  // namespace speechllm::engine
