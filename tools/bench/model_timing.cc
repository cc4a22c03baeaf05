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
#include "absl/time/clock.h"
#include "engine/allocator_tuning.h"
#include "engine/io/program_flags.h"
#include "engine/model/audio_lengths.h"
#include "engine/model/cuda_kernels.h"
#include "engine/model/decode_graphs.h"
#include "engine/model/kv_pool.h"
#include "engine/model/qwen2_audio_model.h"
#include "tools/bench/bench_stats.h"

ABSL_FLAG(std::string, model, "", "checkpoint directory (default: random weights of --preset)");
ABSL_FLAG(std::string, preset, "7b", "shapes for random weights: tiny or 7b");
ABSL_FLAG(std::string, device, "cpu", "cpu or cuda");
ABSL_FLAG(std::string, dtype, "bfloat16", "float32 or bfloat16");
ABSL_FLAG(int, threads, 0, "libtorch CPU threads (0 = default)");
ABSL_FLAG(int, context, 1024, "cached tokens per sequence for the decode steps");
ABSL_FLAG(std::string, batches, "1,16,64", "decode batch sizes");
ABSL_FLAG(int, reps, 10, "timed repetitions (median reported)");
ABSL_FLAG(std::string, streaming_batches, "1,16,64,150",
          "items per streaming step: 1 s encoder chunks in one pass, and chunk prefills in one "
          "decoder pass (empty: skip)");

namespace speechllm::bench {
namespace {

using engine::DecoderBatch;
using engine::DecoderSequence;
using engine::KvPool;
using engine::Qwen2AudioModel;

// Median wall time of `fn` in ms; each run ends with a host read, which synchronises the device.
double TimeMs(const std::function<at::Tensor()>& fn, int reps) {
  for (int i = 0; i < 2; ++i) fn().sum().item<float>();
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    const absl::Time start = absl::Now();
    fn().sum().item<float>();
    ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

// `count` sequences that each add `new_tokens` after `cached` tokens, each in a run of blocks of
// its own: sequence b holds blocks [b * n, (b + 1) * n) of the pool, n = BlocksPerSequence().
int64_t BlocksPerSequence(int64_t new_tokens, int64_t cached, int64_t block_size) {
  return (cached + new_tokens + block_size - 1) / block_size;
}
DecoderBatch ContiguousBatch(int count, int64_t new_tokens, int64_t cached, int64_t block_size) {
  const int64_t blocks_per_sequence = BlocksPerSequence(new_tokens, cached, block_size);
  DecoderBatch batch;
  for (int b = 0; b < count; ++b) {
    DecoderSequence sequence{new_tokens, cached, {}};
    for (int64_t i = 0; i < blocks_per_sequence; ++i)
      sequence.block_table.push_back(b * blocks_per_sequence + i);
    batch.sequences.push_back(sequence);
  }
  return batch;
}

// Bytes one decode step reads from the decoder's weights: every layer, the final norm and the
// lm_head (the embedding table only gives a few rows, unless the lm_head is tied to it).
int64_t DecodeWeightBytes(const engine::Decoder& decoder) {
  int64_t bytes = 0, embedding = 0;
  bool has_lm_head = false;
  for (const engine::NamedTensor& named : decoder.Parameters()) {
    const int64_t size = named.tensor.numel() * static_cast<int64_t>(named.tensor.element_size());
    if (named.name.find("embed_tokens") != std::string::npos) {
      embedding = size;
    } else {
      bytes += size;
    }
    has_lm_head |= named.name.find("lm_head") != std::string::npos;
  }
  return bytes + (has_lm_head ? 0 : embedding);
}

// Device copy bandwidth, bytes read plus bytes written per second, of a 1 GiB copy (256 MiB on
// the CPU): the memory speed a decode step's weight reads can reach.
double CopyBytesPerSecond(at::Device device, int reps) {
  const int64_t bytes = device.is_cuda() ? (1ll << 30) : (256ll << 20);
  const at::Tensor source = at::ones({bytes}, at::TensorOptions().dtype(at::kByte).device(device));
  at::Tensor destination = at::empty_like(source);
  const double ms = TimeMs(
      [&] {
        destination.copy_(source);
        return destination.narrow(0, 0, 1).to(at::kFloat);
      },
      reps);
  return 2.0 * static_cast<double>(bytes) / (ms / 1000.0);
}

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
                    batch.Prepare(block, model.device(), model.dtype());
                    const at::Tensor hidden =
                        model.decoder().Forward(model.decoder().Embed(ids), batch, &kv);
                    return model.decoder().Logits(hidden.index_select(0, rows)).argmax(-1);
                  },
                  reps));
    print_so_far();
  }
}

// Every weight matrix of the decoder (the lm_head's included; the embedding table only when it is
// the lm_head) applied to `rows` rows with one at::linear each: the weight reads of a decode step
// without its attention and element-wise kernels. Their bandwidth, against the copy bandwidth,
// says how close the small-batch GEMMs come to the memory speed: linears_bN_ms, linears_bN_GBps.
void TimeLinears(const Qwen2AudioModel& model, int reps, JsonWriter* json) {
  std::vector<at::Tensor> weights;
  bool has_lm_head = false;
  at::Tensor embedding;
  int64_t bytes = 0;
  for (const engine::NamedTensor& named : model.decoder().Parameters()) {
    if (named.tensor.dim() != 2) continue;
    if (named.name.find("embed_tokens") != std::string::npos) {
      embedding = named.tensor;
      continue;
    }
    has_lm_head |= named.name.find("lm_head") != std::string::npos;
    weights.push_back(named.tensor);
  }
  if (!has_lm_head && embedding.defined()) weights.push_back(embedding);
  for (const at::Tensor& w : weights) bytes += w.numel() * static_cast<int64_t>(w.element_size());
  for (const int64_t rows : {int64_t{1}, int64_t{16}}) {
    std::vector<at::Tensor> inputs;
    for (const at::Tensor& w : weights) inputs.push_back(at::randn({rows, w.size(1)}, w.options()));
    const double ms = TimeMs(
        [&] {
          at::Tensor last;
          for (size_t i = 0; i < weights.size(); ++i) last = at::linear(inputs[i], weights[i]);
          return last;
        },
        reps);
    json->Add(absl::StrCat("linears_b", rows, "_ms"), ms);
    json->Add(absl::StrCat("linears_b", rows, "_GBps"), static_cast<double>(bytes) / ms / 1e6);
    // The same matrices through the project's skinny GEMM (what decode steps run where the load's
    // timing chose it, linear_tuning.h).
    if (rows > engine::kSkinnyGemmMaxRows || !engine::CudaKernelsEnabled(weights[0].device()) ||
        !engine::CudaSkinnyLinear(inputs[0], weights[0], {}).defined()) {
      continue;
    }
    const double kernel_ms = TimeMs(
        [&] {
          at::Tensor last;
          for (size_t i = 0; i < weights.size(); ++i) {
            last = engine::CudaSkinnyLinear(inputs[i], weights[i], {});
            if (!last.defined()) last = at::linear(inputs[i], weights[i]);
          }
          return last;
        },
        reps);
    json->Add(absl::StrCat("linears_b", rows, "_skinny_ms"), kernel_ms);
    json->Add(absl::StrCat("linears_b", rows, "_skinny_GBps"),
              static_cast<double>(bytes) / kernel_ms / 1e6);
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
                   batch.Prepare(block, model.device(), model.dtype());
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
    json.Add("prefill_10s_decoder_ms",
             TimeMs(
                 [&] {
                   batch.Prepare(block, model.device(), model.dtype());
                   const at::Tensor hidden = model.decoder().Forward(embeddings, batch, &kv);
                   return model.decoder().Logits(hidden.narrow(0, hidden.size(0) - 1, 1));
                 },
                 reps));
  }
  print_so_far();

  // Decode steps: one token for each of B sequences holding `context` cached tokens.
  const int64_t context = absl::GetFlag(FLAGS_context);
  json.Add("decode_context_tokens", context);
  for (absl::string_view text :
       absl::StrSplit(absl::GetFlag(FLAGS_batches), ',', absl::SkipEmpty())) {
    int batch_size = 0;
    if (!absl::SimpleAtoi(text, &batch_size) || batch_size < 1) continue;
    const int64_t block = 16, blocks_per_sequence = BlocksPerSequence(1, context, block);
    // One block more than the sequences hold: the decode graphs' scratch block.
    const int64_t num_blocks = batch_size * blocks_per_sequence;
    KvPool kv(config.text, num_blocks + 1, block, model.dtype(), model.device());
    DecoderBatch batch = ContiguousBatch(batch_size, 1, context, block);
    batch.Prepare(block, model.device(), model.dtype());
    const at::Tensor ids = at::full({batch_size}, 1000 % config.text.vocab_size,
                                    at::TensorOptions().dtype(at::kLong).device(model.device()));
    const double ms = TimeMs(
        [&] {
          const at::Tensor hidden = model.decoder().Forward(model.decoder().Embed(ids), batch, &kv);
          return model.decoder().Logits(hidden).argmax(-1);
        },
        reps);
    json.Add(absl::StrCat("decode_b", batch_size, "_ms_per_step"), ms);
    json.Add(absl::StrCat("decode_b", batch_size, "_tokens_per_s"), 1000.0 * batch_size / ms);
    // The same step replayed as a CUDA graph (what the engine runs for decode-only steps),
    // including the copy of the step's inputs into the graph.
    // A capture the runtime refuses (memory, a new libtorch) costs this row, not the figures
    // measured so far: the error goes into the JSON instead of ending the program.
    if (engine::DecodeGraphs::Supported(model.device())) {
      try {
        engine::DecodeGraphs graphs(&model.decoder(), &kv, /*scratch_block=*/num_blocks,
                                    blocks_per_sequence, batch_size);
        const std::vector<int64_t> host_ids(batch_size, 1000 % config.text.vocab_size);
        const double graph_ms =
            TimeMs([&] { return graphs.Run(host_ids, batch.sequences).argmax(-1); }, reps);
        json.Add(absl::StrCat("decode_b", batch_size, "_graph_ms_per_step"), graph_ms);
        json.Add(absl::StrCat("decode_b", batch_size, "_graph_tokens_per_s"),
                 1000.0 * batch_size / graph_ms);
      } catch (const std::exception& error) {
        const std::string message = std::string(error.what()).substr(0, 300);
        std::cerr << "decode graph, batch " << batch_size << ": " << message << "\n";
        json.Add(absl::StrCat("decode_b", batch_size, "_graph_error"), message);
      }
    }
    // Where the step's device time goes, part by part (each alone; the sum against the graph
    // step is what launch gaps and overlap make of them).
    if (engine::CudaKernelsEnabled(model.device()) && batch.kernel_num_rows == batch_size) {
      try {
        double sum_us = 0;
        for (const auto& [name, us] :
             model.decoder().TimeStepParts(model.decoder().Embed(ids), batch, &kv, reps)) {
          json.Add(absl::StrCat("decode_b", batch_size, "_part_", name, "_us"), us);
          sum_us += us;
        }
        json.Add(absl::StrCat("decode_b", batch_size, "_parts_sum_us"), sum_us);
      } catch (const std::exception& error) {
        const std::string message = std::string(error.what()).substr(0, 300);
        std::cerr << "decode parts, batch " << batch_size << ": " << message << "\n";
        json.Add(absl::StrCat("decode_b", batch_size, "_parts_error"), message);
      }
    }
    print_so_far();
  }
  // The yardstick for batch 1: weight bytes over the measured copy bandwidth.
  const int64_t weight_bytes = DecodeWeightBytes(model.decoder());
  const double bandwidth = CopyBytesPerSecond(model.device(), reps);
  json.Add("decode_weight_bytes", weight_bytes);
  json.Add("copy_bandwidth_GBps", bandwidth / 1e9);
  json.Add("decode_bound_ms", 1000.0 * static_cast<double>(weight_bytes) / bandwidth);
  print_so_far();
  json.Add("skinny_gemm_timings", engine::SkinnyTimingsToString(model.decoder().skinny_timings()));
  TimeLinears(model, reps, &json);
  print_so_far();
  TimeStreamingSteps(model, reps, &json, print_so_far);
  return 0;
}

}  // namespace
}  // namespace speechllm::bench

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Times the encoder, the prefill of a 10 s clip, decode steps at batch 1, 16 and 64, and "
      "streaming steps' encoder and decoder passes; prints a JSON object after every section (the "
      "last line holds every figure).");
  speechllm::engine::ParseProgramFlags(argc, argv);
  speechllm::engine::TuneAllocatorForTensors();
  return speechllm::bench::Run();
}
