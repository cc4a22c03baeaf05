// Google Benchmark of the embedding cache's costs per 30 s segment on one core: the key (SHA-256
// over 3000 x 128 log-mel features), CRC-32C, an entry's encode and decode, and a whole hit from
// the disk store (read, check, decode) for the default model (256 wide) and the 7B (4096 wide), and
// the model fingerprint at start-up. A hit must cost less than the encoder pass it replaces. glibc
// malloc is tuned as in the server. Run: build/tools/bench/embedding_cache_bench
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "engine/allocator_tuning.h"
#include "engine/model/safetensors_writer.h"
#include "streaming/crc32c.h"
#include "streaming/disk_embedding_store.h"
#include "streaming/embedding_cache_entry.h"
#include "streaming/model_fingerprint.h"

namespace speechllm::streaming {
namespace {

constexpr int kFrames = 3000, kMels = 128, kRows = 750;  // 30 s

std::vector<float> Values(size_t count) {
  std::vector<float> values(count);
  for (size_t i = 0; i < count; ++i) values[i] = static_cast<float>(i % 977) * 0.013f - 4.0f;
  return values;
}

void BM_Key30s(benchmark::State& state) {
  const std::vector<float> features = Values(static_cast<size_t>(kFrames) * kMels);
  for (auto _ : state) {
    benchmark::DoNotOptimize(EmbeddingCacheKey("model", features, kFrames + 2, kFrames));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(features.size()) * 4);
}
BENCHMARK(BM_Key30s)->Unit(benchmark::kMillisecond);

void BM_Crc32c(benchmark::State& state) {
  const std::string bytes(static_cast<size_t>(state.range(0)), 'x');
  for (auto _ : state) benchmark::DoNotOptimize(Crc32c(bytes));
  state.SetBytesProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_Crc32c)->Arg(1 << 20)->Arg(12 << 20)->Unit(benchmark::kMillisecond);

void BM_EncodeEntry30s(benchmark::State& state) {
  const int64_t hidden = state.range(0);
  const std::vector<float> rows = Values(static_cast<size_t>(kRows * hidden));
  const std::string key = Sha256Hex("segment");
  for (auto _ : state) benchmark::DoNotOptimize(EncodeCacheEntry(key, rows, kRows, hidden));
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(rows.size()) * 4);
}
BENCHMARK(BM_EncodeEntry30s)->Arg(256)->Arg(4096)->Unit(benchmark::kMillisecond);

// A hit as a cache worker serves it: read the file (page cache warm), check and decode it.
void BM_DiskHit30s(benchmark::State& state) {
  const int64_t hidden = state.range(0);
  const std::string dir = "/tmp/speechllm_cache_bench_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  auto store = DiskEmbeddingStore::Open(dir, int64_t{1} << 30);
  if (!store.ok()) {
    state.SkipWithError("cannot open the store");
    return;
  }
  const std::string key = Sha256Hex("segment");
  const std::vector<float> rows = Values(static_cast<size_t>(kRows * hidden));
  if (!(*store)->Write(key, EncodeCacheEntry(key, rows, kRows, hidden)).ok()) {
    state.SkipWithError("cannot write the entry");
    return;
  }
  for (auto _ : state) {
    auto bytes = (*store)->Read(key);
    auto decoded = DecodeCacheEntry(**bytes, key, hidden);
    benchmark::DoNotOptimize(decoded->rows.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(rows.size()) * 4);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_DiskHit30s)->Arg(256)->Arg(4096)->Unit(benchmark::kMillisecond);

// The model fingerprint over an audio tower of `MiB` of weights (Qwen2-Audio-7B's is about
// 1,270 MiB in bfloat16) in the page cache, as at start-up right after the model load: the
// SHA-256 of every byte, plus the checkpoint's open and header parse.
void BM_Fingerprint(benchmark::State& state) {
  const int64_t bytes = state.range(0) << 20;
  const std::string dir = "/tmp/speechllm_fingerprint_bench_" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  engine::SafetensorsWriter writer;
  const int64_t elements = bytes / 2;
  if (!writer
           .Add("audio_tower.layers.0.weight", engine::DType::kBF16, {elements},
                std::string(static_cast<size_t>(bytes), '\x3f'))
           .ok() ||
      !writer.WriteFile(dir + "/model.safetensors").ok()) {
    state.SkipWithError("cannot write the checkpoint");
    return;
  }
  for (auto _ : state) {
    auto fingerprint = ModelFingerprint(dir, "linear");
    benchmark::DoNotOptimize(fingerprint->data());
  }
  state.SetBytesProcessed(state.iterations() * bytes);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_Fingerprint)->Arg(256)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace speechllm::streaming

// As in the server: megabyte buffers come from the heap, not fresh mappings.
int main(int argc, char** argv) {
  speechllm::engine::TuneAllocatorForTensors();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
