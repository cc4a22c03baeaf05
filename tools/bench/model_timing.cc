// speechllm-model-timing: times the model's parts the way the GPU targets are stated
// (PERFORMANCE.md): the encoder on 10 s and 30 s of audio, the prefill of a 10 s clip (encoder +
// projector + prompt), one decode step at batch 1, 16 and 64 over contexts of --context tokens,
// against the paged KV pool, with its device time part by part on CUDA, the decoder's matrices
// alone at batch 1 and 16 (their bandwidth), and the two halves of a streaming step under load:
// one encoder pass of N 1 s chunks (with and without an exact final's 10 s re-encode) and one
// decoder pass of N chunk prefills. Random weights of a preset (no checkpoint) or a checkpoint.
// Prints one JSON object, again after every section with all figures so far (one line each), so
// that a run cut short by a timeout keeps what it measured: the last line is the result. Timing:
// median of --reps runs after warm-up, each ending with a device synchronisation.
//   speechllm-model-timing --preset 7b --device cuda --dtype bfloat16
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <iostream>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "engine/allocator_tuning.h"
#include "engine/io/program_flags.h"
#include "engine/model/audio_lengths.h"
#include "engine/model/kv_pool.h"
#include "engine/model/qwen2_audio_model.h"
#include "tools/bench/bench_stats.h"
#include "tools/bench/decode_timing.h"
#include "tools/bench/model_timing_util.h"

ABSL_FLAG(std::string, model, "", "checkpoint directory (default: random weights of --preset)");
ABSL_FLAG(std::string, preset, "7b", "shapes for random weights: tiny or 7b");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda");
ABSL_FLAG(std::string, dtype, "bfloat16", "float32 or bfloat16");
ABSL_FLAG(int, threads, 0, "libtorch CPU threads (0 = default)");
ABSL_FLAG(int, context, 1024, "cached tokens per sequence for the decode steps");
ABSL_FLAG(std::string, batches, "1,16,64", "decode batch sizes");
ABSL_FLAG(int, reference_context, 293,
          "cached tokens of the reference figures' decode steps, timed again at "
          "--reference_batches (0: skip)");
ABSL_FLAG(std::string, reference_batches, "1,16", "decode batch sizes at --reference_context");
ABSL_FLAG(int, reps, 10, "timed repetitions (median reported)");
ABSL_FLAG(std::string, streaming_batches, "1,16,64,150",
          "items per streaming step: 1 s encoder chunks in one pass, and chunk prefills in one "
          "decoder pass (empty: skip)");

namespace speechllm::bench {
namespace {

using engine::DecoderBatch;
using engine::KvPool;
using engine::Qwen2AudioModel;

// The two halves of a streaming step at N streams, as the engine batches them under load:
//  - encoder_chunks_bN_ms: one EncodeBatch pass of N block-mode items of 1 s (50 new positions
//    after 100 cached: 2 s into an utterance); ..._with_final_ms adds one exact final's re-encode
//    (a 10 s segment, 500 positions, no cache) to the same pass;
//  - prefill_chunks_bN_ms: one decoder pass of N sequences adding 27 tokens each (25 audio rows
//    and the prompt's end) after 200 cached, with the logits of each sequence's last row.
void TimeStreamingSteps(const Qwen2AudioModel& model, int reps, JsonWriter* json,
                        const std::function<void()>& print_so_far) {
  const engine::AudioEncoder& encoder = model.encoder();
  const auto options = at::TensorOptions().dtype(model.dtype()).device(model.device());
  const int64_t d_model = encoder.config().d_model;
  for (absl::string_view text :
       absl::StrSplit(absl::GetFlag(FLAGS_streaming_batches), ',', absl::SkipEmpty())) {
    int items = 0;
    if (!absl::SimpleAtoi(text, &items) || items < 1) continue;
    const int64_t cached = 100, fresh = 50;
    // Caches of 100 positions, filled once; a pass replaces a cache's tensors (it never writes
    // them), so each repetition starts from a shallow copy.
    std::vector<engine::EncoderKvCache> filled(items);
    for (engine::EncoderKvCache& cache : filled) {
      encoder.EncodeBatch({{at::randn({cached, d_model}, options), 0, &cache}});
    }
    std::vector<at::Tensor> conv;
    for (int i = 0; i < items; ++i) conv.push_back(at::randn({fresh, d_model}, options));
    const at::Tensor final_conv = at::randn({500, d_model}, options);
    for (const bool with_final : {false, true}) {
      const double ms = TimeMs(
          [&] {
            std::vector<engine::EncoderKvCache> caches = filled;
            std::vector<engine::EncoderWork> work;
            for (int i = 0; i < items; ++i) work.push_back({conv[i], cached, &caches[i]});
            if (with_final) work.push_back({final_conv, 0, nullptr});
            return encoder.EncodeBatch(work).back();
          },
          reps);
      json->Add(absl::StrCat("encoder_chunks_b", items, with_final ? "_with_final" : "", "_ms"),
                ms);
    }

    const int64_t block = 16, start = 200, added = 27;
    KvPool kv(model.config().text, items * BlocksPerSequence(added, start, block), block,
              model.dtype(), model.device());
    DecoderBatch batch = ContiguousBatch(items, added, start, block);
    std::vector<int64_t> last_rows;
    for (int b = 0; b < items; ++b) last_rows.push_back((b + 1) * added - 1);
    const at::Tensor ids = at::full({items * added}, 1000 % model.config().text.vocab_size,
                                    at::TensorOptions().dtype(at::kLong).device(model.device()));
    const at::Tensor rows =
        at::tensor(last_rows, at::TensorOptions().dtype(at::kLong)).to(model.device());
    json->Add(absl::StrCat("prefill_chunks_b", items, "_ms"),
              TimeMs(
                  [&] {
                    batch.Prepare(block, model.device(), model.decoder().attention_format());
                    const at::Tensor hidden =
                        model.decoder().Forward(model.decoder().Embed(ids), batch, &kv);
                    return model.decoder().Logits(hidden.index_select(0, rows)).argmax(-1);
                  },
                  reps));
    print_so_far();
  }
}

int Run() {
  if (absl::GetFlag(FLAGS_reps) < 1 || absl::GetFlag(FLAGS_context) < 1) {
    std::cerr << "speechllm-model-timing: --reps and --context must be at least 1\n";
    return 2;
  }
  c10::InferenceMode guard;
  engine::RuntimeOptions options;
  options.device = absl::GetFlag(FLAGS_device);
  options.dtype = absl::GetFlag(FLAGS_dtype);
  options.num_threads = absl::GetFlag(FLAGS_threads);
  absl::StatusOr<std::unique_ptr<Qwen2AudioModel>> loaded;
  if (!absl::GetFlag(FLAGS_model).empty()) {
    loaded = Qwen2AudioModel::Load(absl::GetFlag(FLAGS_model), options);
  } else {
    auto config = engine::ModelConfig::Preset(absl::GetFlag(FLAGS_preset));
    if (!config.ok()) {
      std::cerr << config.status() << "\n";
      return 1;
    }
    loaded = Qwen2AudioModel::CreateRandom(*config, options, /*seed=*/7);
  }
  if (!loaded.ok()) {
    std::cerr << loaded.status() << "\n";
    return 1;
  }
  const Qwen2AudioModel& model = **loaded;
  const engine::ModelConfig& config = model.config();
  const int reps = absl::GetFlag(FLAGS_reps);
  JsonWriter json;
  json.Add("device", options.device);
  json.Add("dtype", options.dtype);
  json.Add("model", absl::GetFlag(FLAGS_model).empty() ? "random:" + absl::GetFlag(FLAGS_preset)
                                                       : absl::GetFlag(FLAGS_model));
  const auto print_so_far = [&json] { std::cout << json.ToString() << std::endl; };

  // Encoder: log-mel features of noise (values matter only for numerics, not for time).
  auto features = [&](double seconds) {
    const int64_t valid = engine::NumValidFrames(
        static_cast<int64_t>(seconds * config.features.sample_rate_hz), config.features);
    const int64_t frames = std::min<int64_t>(valid + 2, config.features.max_frames());
    return std::make_pair(
        at::randn({config.audio.num_mel_bins, frames}, at::TensorOptions().device(model.device())),
        valid);
  };
  for (double seconds : {10.0, 30.0}) {
    // Named variables, not a structured binding: lambdas may capture those only from C++20.
    const auto input = features(seconds);
    const at::Tensor& mel = input.first;
    const int64_t valid = input.second;
    json.Add(absl::StrCat("encoder_", static_cast<int>(seconds), "s_ms"),
             TimeMs([&] { return model.encoder().EncodeValidPrefix(mel, valid); }, reps));
    // The same segment through the batched eager pass: what the whole-segment graphs save.
    const auto eager = [&] {
      return model.encoder().EncodeValidPrefix(mel, valid, nullptr, engine::EncoderPass::kBatched);
    };
    json.Add(absl::StrCat("encoder_", static_cast<int>(seconds), "s_eager_ms"),
             TimeMs(eager, reps));
    json.Add(absl::StrCat("encoder_", static_cast<int>(seconds), "s_eager_host_ms"),
             HostEnqueueMs(eager, reps));
  }
  {
    // A pass of exact finals alone (four 10 s segments): one graph replay each against the batched
    // eager pass, to check EncoderGraphs::kMaxSegmentsPerPass.
    const auto input = features(10.0);
    const at::Tensor rows = model.encoder()
                                .ConvStemOf(input.first)
                                .narrow(0, 0, engine::ConvOutputLength(input.second));
    const std::vector<engine::EncoderWork> finals(4, engine::EncoderWork{rows, 0, nullptr});
    const std::pair<const char*, engine::EncoderPass> passes[] = {
        {"encoder_finals_b4_ms", engine::EncoderPass::kGraphs},
        {"encoder_finals_b4_eager_ms", engine::EncoderPass::kBatched}};
    for (const auto& key_and_pass : passes) {
      const engine::EncoderPass pass = key_and_pass.second;
      json.Add(
          key_and_pass.first,
          TimeMs([&] { return model.encoder().EncodeBatch(finals, nullptr, pass).back(); }, reps));
    }
  }
  json.Add("encoder_segment_graphs", model.encoder().NumSegmentGraphs());
  if (const absl::Status graphs = model.encoder().GraphsStatus(); !graphs.ok()) {
    json.Add("encoder_graphs_error", std::string(graphs.message()));
  }
  print_so_far();

  // Prefill of a 10 s clip: encoder + projector + a prompt of 4 + 250 + 7 tokens.
  {
    const auto input = features(10.0);
    const at::Tensor& mel = input.first;
    const int64_t valid = input.second;
    const int64_t audio_tokens = engine::AudioTokenCount(valid);
    std::vector<int64_t> ids = {1, 2, 3, config.audio_bos_token_id};
    ids.insert(ids.end(), audio_tokens, config.audio_token_id);
    for (int64_t id : {config.audio_eos_token_id, int64_t{198}, int64_t{10}, int64_t{11},
                       int64_t{12}, int64_t{13}, int64_t{14}}) {
      ids.push_back(id);
    }
    const int64_t block = 16;
    const int64_t prompt_tokens = static_cast<int64_t>(ids.size());
    KvPool kv(config.text, BlocksPerSequence(prompt_tokens, 0, block), block, model.dtype(),
              model.device());
    DecoderBatch batch = ContiguousBatch(1, prompt_tokens, 0, block);
    json.Add("prefill_10s_prompt_tokens", prompt_tokens);
    json.Add("prefill_10s_ms",
             TimeMs(
                 [&] {
                   const at::Tensor audio =
                       model.projector()
                           .Forward(model.encoder().EncodeValidPrefix(mel, valid))
                           .to(model.decoder().dtype());
                   const at::Tensor embeddings = *model.EmbedPrompt(ids, audio);
                   batch.Prepare(block, model.device(), model.decoder().attention_format());
                   const at::Tensor hidden = model.decoder().Forward(embeddings, batch, &kv);
                   return model.decoder().Logits(hidden.narrow(0, hidden.size(0) - 1, 1));
                 },
                 reps));
    // Its decoder half alone (the prompt's embeddings made once): with encoder_10s_ms, where the
    // prefill's time goes.
    const at::Tensor audio = model.projector()
                                 .Forward(model.encoder().EncodeValidPrefix(mel, valid))
                                 .to(model.decoder().dtype());
    const at::Tensor embeddings = *model.EmbedPrompt(ids, audio);
    const auto decoder_half = [&] {
      batch.Prepare(block, model.device(), model.decoder().attention_format());
      const at::Tensor hidden = model.decoder().Forward(embeddings, batch, &kv);
      return model.decoder().Logits(hidden.narrow(0, hidden.size(0) - 1, 1));
    };
    json.Add("prefill_10s_decoder_ms", TimeMs(decoder_half, reps));
    // Against the line above: whether a prefill graph would pay (host-bound) or not.
    json.Add("prefill_10s_decoder_host_ms", HostEnqueueMs(decoder_half, reps));
  }
  print_so_far();

  // Decode steps: one token for each of B sequences holding `context` cached tokens.
  const int64_t context = absl::GetFlag(FLAGS_context);
  json.Add("decode_context_tokens", context);
  for (absl::string_view text :
       absl::StrSplit(absl::GetFlag(FLAGS_batches), ',', absl::SkipEmpty())) {
    int batch_size = 0;
    if (!absl::SimpleAtoi(text, &batch_size) || batch_size < 1) continue;
    TimeDecodeStep(model, batch_size, context, absl::StrCat("decode_b", batch_size), reps, &json);
    print_so_far();
  }
  // The yardstick for batch 1: weight bytes over the measured copy bandwidth.
  const int64_t weight_bytes = DecodeWeightBytes(model.decoder());
  const double bandwidth = CopyBytesPerSecond(model.device(), reps);
  json.Add("decode_weight_bytes", weight_bytes);
  json.Add("copy_bandwidth_GBps", bandwidth / 1e9);
  json.Add("decode_bound_ms", 1000.0 * static_cast<double>(weight_bytes) / bandwidth);
  print_so_far();
  json.Add("skinny_gemm_timings", engine::SkinnyTuningToString(model.decoder().skinny_tuning()));
  TimeLinears(model, reps, &json);
  print_so_far();
  TimeStreamingSteps(model, reps, &json, print_so_far);
  // Decode steps again at the context of the reference figures (PERFORMANCE.md, from
  // shared/tools/hf_reference.py: decode after a 10 s clip's 261-token prompt while generating 64
  // tokens, so 293 on average): decode_bN_refctx_*.
  const int64_t reference_context = absl::GetFlag(FLAGS_reference_context);
  if (reference_context > 0) {
    json.Add("decode_reference_context_tokens", reference_context);
    for (absl::string_view text :
         absl::StrSplit(absl::GetFlag(FLAGS_reference_batches), ',', absl::SkipEmpty())) {
      int batch_size = 0;
      if (!absl::SimpleAtoi(text, &batch_size) || batch_size < 1) continue;
      TimeDecodeStep(model, batch_size, reference_context,
                     absl::StrCat("decode_b", batch_size, "_refctx"), reps, &json);
      print_so_far();
    }
  }
  return 0;
}

}  // namespace
}  // namespace speechllm::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Times the encoder, the prefill of a 10 s clip, decode steps at batch 1, 16 and 64, and "
      "streaming steps' encoder and decoder passes; prints a JSON object after every section (the "
      "last line holds every figure).");
  speechllm::engine::ParseProgramFlagsOnly(argc, argv);
  speechllm::engine::TuneAllocatorForTensors();
  return speechllm::bench::Run();
}
