// Google Benchmark of the model's parts on the CPU with the tiny fixture checkpoint (or random
// weights of a preset): conv stem, encoder layers, the decoder for a decode token at several batch
// sizes. glibc malloc is tuned as in the server (engine/allocator_tuning.h): untuned, fresh
// mmaps of every step's temporaries, not the model, set the times.
// Run: build/tools/bench/model_bench [--benchmark_filter=...]
#include <ATen/record_function.h>
#include <benchmark/benchmark.h>
#include <c10/core/InferenceMode.h>

#include <functional>
#include <memory>
#include <set>
#include <string>

#include "engine/allocator_tuning.h"
#include "engine/io/wav_reader.h"
#include "engine/model/audio_lengths.h"
#include "engine/model/kv_pool.h"
#include "engine/model/qwen2_audio_model.h"

namespace speechllm::engine {
namespace {

const std::string kFixture =
    std::string(SPEECHLLM_SOURCE_DIR) + "/tests/data/qwen2-audio-tiny-golden";

Qwen2AudioModel& Model() {
  static Qwen2AudioModel* model =
      Qwen2AudioModel::Load(kFixture + "/model", RuntimeOptions{})->release();
  return *model;
}

at::Tensor ClipFeatures(int64_t* valid_frames) {
  const auto samples = *ReadMonoWavFile(kFixture + "/clip_b.wav", 16000);
  const LogMelFeatures features = *Model().log_mel().ExtractValidPrefix(samples);
  *valid_frames = features.num_valid_frames;
  return Model().FeaturesTensor(features);
}

void BM_ConvStem(benchmark::State& state) {
  c10::InferenceMode guard;
  int64_t valid = 0;
  const at::Tensor mel = ClipFeatures(&valid);
  for (auto _ : state) benchmark::DoNotOptimize(Model().encoder().ConvStemOf(mel));
}
BENCHMARK(BM_ConvStem)->Unit(benchmark::kMicrosecond);

void BM_EncodeValidPrefix(benchmark::State& state) {
  c10::InferenceMode guard;
  int64_t valid = 0;
  const at::Tensor mel = ClipFeatures(&valid);
  for (auto _ : state) benchmark::DoNotOptimize(Model().encoder().EncodeValidPrefix(mel, valid));
  state.counters["x_real_time"] =
      benchmark::Counter(7.91 * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EncodeValidPrefix)->Unit(benchmark::kMicrosecond);

// The tensor operations that `fn` issues itself on this thread: top-level ATen calls (not those
// nested inside another operator), views left out. On a GPU each is about one kernel launch, so
// this counts a pass's launches where no GPU is at hand.
int64_t g_operations = 0, g_depth = 0;
int64_t CountOperations(const std::function<void()>& fn) {
  g_operations = g_depth = 0;
  const at::CallbackHandle handle = at::addThreadLocalCallback(
      at::RecordFunctionCallback(
          [](const at::RecordFunction& call) -> std::unique_ptr<at::ObserverContext> {
            static const std::set<std::string> kViews = {
                "aten::narrow", "aten::slice",         "aten::select",    "aten::as_strided",
                "aten::view",   "aten::transpose",     "aten::unsqueeze", "aten::squeeze",
                "aten::expand", "aten::alias",         "aten::t",         "aten::permute",
                "aten::detach", "aten::_reshape_alias"};
            if (g_depth++ == 0 && kViews.count(call.name()) == 0) ++g_operations;
            return nullptr;
          },
          [](const at::RecordFunction&, at::ObserverContext*) { --g_depth; })
          .scopes({at::RecordScope::FUNCTION}));
  fn();
  at::removeCallback(handle);
  return g_operations;
}

// One encoder pass over `items` block-mode items (50 new positions each after 100 cached ones, the
// shape of 1 s chunks 2 s into a segment), attention per item (arg 2 = 0, the CPU default) or all
// items in one padded product per layer (1, the CUDA default: EncoderBatchAttention).
void BM_EncodeBatch(benchmark::State& state) {
  c10::InferenceMode guard;
  const int64_t items = state.range(0), cached = 100, fresh = 50;
  const bool batched = state.range(1) != 0;
  const AudioEncoder& encoder = Model().encoder();
  const int64_t d_model = encoder.config().d_model;
  // Caches of 100 positions, filled once; each iteration starts from a copy (the tensors are
  // replaced, not written, when a pass extends a cache).
  std::vector<EncoderKvCache> filled(items);
  at::manual_seed(3);
  for (EncoderKvCache& cache : filled) {
    encoder.EncodeBatch({{at::randn({cached, d_model}), 0, &cache}});
  }
  std::vector<at::Tensor> conv;
  for (int64_t i = 0; i < items; ++i) conv.push_back(at::randn({fresh, d_model}));
  auto pass = [&] {
    std::vector<EncoderKvCache> caches = filled;
    std::vector<EncoderWork> work;
    for (int64_t i = 0; i < items; ++i) work.push_back({conv[i], cached, &caches[i]});
    benchmark::DoNotOptimize(encoder.EncodeBatch(
        work, nullptr, batched ? engine::EncoderPass::kBatched : engine::EncoderPass::kPerItem));
  };
  state.counters["operations"] = static_cast<double>(CountOperations(pass));
  for (auto _ : state) pass();
  state.counters["items_per_second"] =
      benchmark::Counter(items * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EncodeBatch)
    ->ArgsProduct({{1, 16, 64}, {0, 1}})
    ->ArgNames({"items", "batched"})
    ->Unit(benchmark::kMicrosecond);

// One decode token for `batch` sequences of 200 cached tokens each.
void BM_DecodeStep(benchmark::State& state) {
  c10::InferenceMode guard;
  const int64_t batch = state.range(0), context = 200, block = 16;
  const TextConfig& text = Model().config().text;
  KvPool kv(text, batch * (context / block + 1), block, at::kFloat, at::kCPU);
  DecoderBatch decoder_batch;
  for (int64_t b = 0; b < batch; ++b) {
    DecoderSequence sequence{1, context, {}};
    for (int64_t i = 0; i <= context / block; ++i)
      sequence.block_table.push_back(b * (context / block + 1) + i);
    decoder_batch.sequences.push_back(sequence);
  }
  const at::Tensor ids = at::full({batch}, 7, at::TensorOptions().dtype(at::kLong));
  for (auto _ : state) {
    decoder_batch.Prepare(block, at::kCPU);
    const at::Tensor hidden =
        Model().decoder().Forward(Model().decoder().Embed(ids), decoder_batch, &kv);
    benchmark::DoNotOptimize(Model().decoder().Logits(hidden).argmax(-1));
  }
  state.counters["tokens_per_second"] =
      benchmark::Counter(batch * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecodeStep)->Arg(1)->Arg(4)->Arg(16)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace speechllm::engine

int main(int argc, char** argv) {
  speechllm::engine::TuneAllocatorForTensors();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
