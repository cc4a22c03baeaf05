// Google Benchmark of the model's parts on the CPU with the tiny fixture checkpoint (or random
// weights of a preset): conv stem, encoder layers, the decoder for a decode token at several batch
// sizes. Run: build/tools/bench/model_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <c10/core/InferenceMode.h>

#include <memory>

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

BENCHMARK_MAIN();
