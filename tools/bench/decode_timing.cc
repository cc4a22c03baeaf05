#include "tools/bench/decode_timing.h"

#include <exception>
#include <iostream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/model/cuda_kernels.h"
#include "engine/model/decode_graphs.h"
#include "engine/model/kv_pool.h"
#include "engine/model/linear_tuning.h"
#include "tools/bench/model_timing_util.h"

namespace speechllm::bench {

using engine::DecoderBatch;
using engine::KvPool;

namespace {

// A figure the device refused (a capture, a timing): its error under `key` in the JSON and on
// stderr instead, so that the figures measured so far stay.
void AddError(const std::string& key, const std::exception& error, JsonWriter* json) {
  const std::string message = std::string(error.what()).substr(0, 300);
  std::cerr << key << ": " << message << "\n";
  json->Add(key, message);
}

// The tensors a decode step reads whole: every decoder parameter but the embedding table, which
// gives a few rows only, unless the lm_head is tied to it (then it comes last, as the lm_head).
std::vector<at::Tensor> DecodeStepTensors(const engine::Decoder& decoder) {
  std::vector<at::Tensor> tensors;
  at::Tensor embedding;
  bool has_lm_head = false;
  for (const engine::NamedTensor& named : decoder.Parameters()) {
    if (named.name.find("embed_tokens") != std::string::npos) {
      embedding = named.tensor;
      continue;
    }
    has_lm_head |= named.name.find("lm_head") != std::string::npos;
    tensors.push_back(named.tensor);
  }
  if (!has_lm_head && embedding.defined()) tensors.push_back(embedding);
  return tensors;
}

int64_t BytesOf(const std::vector<at::Tensor>& tensors) {
  int64_t bytes = 0;
  for (const at::Tensor& t : tensors) bytes += t.numel() * static_cast<int64_t>(t.element_size());
  return bytes;
}

}  // namespace

void TimeDecodeStep(const engine::Qwen2AudioModel& model, int batch_size, int64_t context,
                    const std::string& prefix, int reps, JsonWriter* json) {
  const int64_t block = 16, blocks_per_sequence = BlocksPerSequence(1, context, block);
  // One block more than the sequences hold: the decode graphs' scratch block.
  const int64_t num_blocks = batch_size * blocks_per_sequence;
  KvPool kv(model.config().text, num_blocks + 1, block, model.dtype(), model.device());
  DecoderBatch batch = ContiguousBatch(batch_size, 1, context, block);
  batch.Prepare(block, model.device(), model.decoder().attention_format());
  const at::Tensor ids = at::full({batch_size}, 1000 % model.config().text.vocab_size,
                                  at::TensorOptions().dtype(at::kLong).device(model.device()));
  const double ms = TimeMs(
      [&] {
        const at::Tensor hidden = model.decoder().Forward(model.decoder().Embed(ids), batch, &kv);
        return model.decoder().Logits(hidden).argmax(-1);
      },
      reps);
  json->Add(absl::StrCat(prefix, "_ms_per_step"), ms);
  json->Add(absl::StrCat(prefix, "_tokens_per_s"), 1000.0 * batch_size / ms);
  // The same step replayed as a CUDA graph (what the engine runs for decode-only steps),
  // including the copy of the step's inputs into the graph.
  // A capture the runtime refuses (memory, a new libtorch) costs this row, not the figures
  // measured so far: the error goes into the JSON instead of ending the program.
  if (engine::DecodeGraphs::Supported(model.device())) {
    try {
      engine::DecodeGraphs graphs(&model.decoder(), &kv, /*scratch_block=*/num_blocks,
                                  blocks_per_sequence, batch_size);
      const std::vector<int64_t> host_ids(batch_size, 1000 % model.config().text.vocab_size);
      const double graph_ms =
          TimeMs([&] { return graphs.Run(host_ids, batch.sequences).argmax(-1); }, reps);
      json->Add(absl::StrCat(prefix, "_graph_ms_per_step"), graph_ms);
      json->Add(absl::StrCat(prefix, "_graph_tokens_per_s"), 1000.0 * batch_size / graph_ms);
    } catch (const std::exception& error) {
      AddError(absl::StrCat(prefix, "_graph_error"), error, json);
    }
  }
  // Where the step's device time goes, part by part (each alone; the sum against the graph
  // step is what launch gaps and overlap make of them).
  if (engine::CudaKernelsEnabled(model.device()) && batch.kernel_num_rows == batch_size) {
    try {
      double sum_us = 0;
      for (const auto& [name, us] :
           model.decoder().TimeStepParts(model.decoder().Embed(ids), batch, &kv, reps)) {
        json->Add(absl::StrCat(prefix, "_part_", name, "_us"), us);
        sum_us += us;
      }
      json->Add(absl::StrCat(prefix, "_parts_sum_us"), sum_us);
    } catch (const std::exception& error) {
      AddError(absl::StrCat(prefix, "_parts_error"), error, json);
    }
  }
}

int64_t DecodeWeightBytes(const engine::Decoder& decoder) {
  return BytesOf(DecodeStepTensors(decoder));
}

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

void TimeLinears(const engine::Qwen2AudioModel& model, int reps, JsonWriter* json) {
  std::vector<at::Tensor> weights;  // the matrices (not the norms and biases)
  for (const at::Tensor& t : DecodeStepTensors(model.decoder())) {
    if (t.dim() == 2) weights.push_back(t);
  }
  const int64_t bytes = BytesOf(weights);
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
    // Not where the kernel is off (SPEECHLLM_SKINNY_GEMM=0, as run_bench.sh sets when its test
    // failed): a path that failed its test is not timed.
    const absl::StatusOr<engine::SkinnyGemmSetting> setting =
        engine::SkinnyGemmSettingFromEnvironment();
    const bool kernel_off = !setting.ok() || (!setting->timed && setting->max_rows == 0);
    if (kernel_off || rows > engine::kSkinnyGemmMaxRows ||
        !engine::CudaKernelsEnabled(weights[0].device()) ||
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

}  // namespace speechllm::bench
