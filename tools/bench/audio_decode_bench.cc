// Google Benchmark of audio decoding plus resampling to 16 kHz (streaming/audio_decoder.h) on one
// core, per stream: 10 s of the golden clip_a (looped) in each input format (PCM, G.711, Ogg and
// WebM Opus, FLAC), fed in 20 ms chunks as a live stream sends it, through a fresh decoder per
// iteration (creation included).
// "x_real_time" = audio seconds decoded per CPU second; the share of one core a real-time stream
// costs is 100 / x_real_time percent (= CPU time per iteration / 10 s x 100; target: < 1 %).
// Run: taskset -c 0 build/tools/bench/audio_decode_bench
#include <FLAC/stream_encoder.h>
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "client/opus_encoder.h"
#include "client/pcm_source.h"
#include "engine/io/wav_reader.h"
#include "streaming/audio_decoder.h"
#include "streaming/g711_decoder.h"
#include "streaming/resampler.h"

namespace speechllm::streaming {
namespace {

constexpr double kSeconds = 10.0;

// clip_a looped to 10 s at `rate_hz` (resampled from 16 kHz by the service's resampler).
std::vector<float> Audio(int rate_hz) {
  auto clip = engine::ReadMonoWavFile(
      SPEECHLLM_SOURCE_DIR "/tests/data/qwen2-audio-tiny-golden/clip_a.wav", 16000);
  if (!clip.ok()) std::abort();
  std::vector<float> looped;
  while (looped.size() < static_cast<size_t>(kSeconds * 16000)) {
    looped.insert(looped.end(), clip->begin(), clip->end());
  }
  looped.resize(static_cast<size_t>(kSeconds * 16000));
  if (rate_hz == 16000) return looped;
  auto resampler = Resampler::Create(16000, rate_hz);
  std::vector<float> out;
  if (!resampler.ok() || !(*resampler)->Process(looped, &out).ok() ||
      !(*resampler)->Flush(&out).ok()) {
    std::abort();
  }
  return out;
}

// The inverse of G.711 decoding for the benchmark input: the code word whose value is nearest.
std::string EncodeG711(const std::vector<float>& samples, bool mulaw) {
  std::vector<std::pair<float, uint8_t>> table;
  for (int c = 0; c < 256; ++c) {
    const auto code = static_cast<uint8_t>(c);
    table.emplace_back((mulaw ? MulawToLinear(code) : AlawToLinear(code)) / 32768.0f, code);
  }
  std::string out(samples.size(), '\0');
  for (size_t i = 0; i < samples.size(); ++i) {
    float best = 1e9f;
    for (const auto& [value, code] : table) {
      if (std::abs(value - samples[i]) < best) {
        best = std::abs(value - samples[i]);
        out[i] = static_cast<char>(code);
      }
    }
  }
  return out;
}

void SetCounters(benchmark::State& state) {
  state.counters["x_real_time"] =
      benchmark::Counter(kSeconds * state.iterations(), benchmark::Counter::kIsRate);
}

// Decodes `bytes` in chunks of `chunk_bytes` with a fresh decoder per iteration.
void Run(benchmark::State& state, const AudioFormatSpec& format, const std::string& bytes,
         size_t chunk_bytes) {
  std::vector<float> out;
  out.reserve(static_cast<size_t>(kSeconds * 16000) + 1024);
  for (auto _ : state) {
    auto decoder = AudioDecoder::Create(format, 16000);
    if (!decoder.ok()) {
      state.SkipWithError(decoder.status().ToString().c_str());
      return;
    }
    out.clear();
    for (size_t at = 0; at < bytes.size(); at += chunk_bytes) {
      const absl::string_view chunk(bytes.data() + at, std::min(chunk_bytes, bytes.size() - at));
      if (!(*decoder)->Decode(chunk, &out, nullptr).ok()) state.SkipWithError("decode failed");
    }
    if (!(*decoder)->Finish(&out).ok()) state.SkipWithError("finish failed");
    benchmark::DoNotOptimize(out.data());
  }
  SetCounters(state);
  state.counters["out_samples"] = static_cast<double>(out.size());
}

void BM_PcmS16_48kTo16k(benchmark::State& state) {
  const std::string bytes = client::EncodePcmS16le(Audio(48000));
  Run(state, {AudioEncoding::kPcmS16le, 48000, 1}, bytes, 48000 * 2 / 50);
}
BENCHMARK(BM_PcmS16_48kTo16k)->Unit(benchmark::kMillisecond);

void BM_PcmS16_44k1StereoTo16k(benchmark::State& state) {
  std::vector<float> mono = Audio(44100), stereo;
  for (float v : mono) stereo.insert(stereo.end(), {v, v});
  const std::string bytes = client::EncodePcmS16le(stereo);
  Run(state, {AudioEncoding::kPcmS16le, 44100, 2}, bytes, 44100 * 4 / 50);
}
BENCHMARK(BM_PcmS16_44k1StereoTo16k)->Unit(benchmark::kMillisecond);

void BM_PcmS16_16kPassthrough(benchmark::State& state) {
  const std::string bytes = client::EncodePcmS16le(Audio(16000));
  Run(state, {AudioEncoding::kPcmS16le, 16000, 1}, bytes, 16000 * 2 / 50);
}
BENCHMARK(BM_PcmS16_16kPassthrough)->Unit(benchmark::kMillisecond);

void BM_Mulaw8kTo16k(benchmark::State& state) {
  const std::string bytes = EncodeG711(Audio(8000), /*mulaw=*/true);
  Run(state, {AudioEncoding::kMulaw, 8000, 1}, bytes, 8000 / 50);
}
BENCHMARK(BM_Mulaw8kTo16k)->Unit(benchmark::kMillisecond);

// Ogg Opus from a 48 kHz source at 32 kbit/s (libopusenc, 20 ms frames), decoded by libopus at
// 16 kHz; chunks of 160 bytes (~40 ms at this bitrate) split pages anywhere.
std::string OggOpus48k() {
  client::OggOpusEncoderOptions options;
  options.sample_rate_hz = 48000;
  options.bitrate_bps = 32000;
  auto bytes = client::EncodeOggOpus(Audio(48000), options);
  if (!bytes.ok()) std::abort();
  return *std::move(bytes);
}

void BM_OggOpus48kTo16k(benchmark::State& state) {
  const std::string bytes = OggOpus48k();
  state.counters["bytes"] = static_cast<double>(bytes.size());
  Run(state, {AudioEncoding::kOggOpus, 0, 0}, bytes, 160);
}
BENCHMARK(BM_OggOpus48kTo16k)->Unit(benchmark::kMillisecond);

// The same Ogg Opus muxed into WebM by mkvmerge (mkvtoolnix; the benchmark is skipped without
// it), in chunks of 160 bytes.
void BM_WebmOpus48kTo16k(benchmark::State& state) {
  const std::string ogg = OggOpus48k();
  const std::string in = "/tmp/speechllm_bench_" + std::to_string(getpid()) + ".opus";
  const std::string out = in.substr(0, in.size() - 4) + "webm";
  std::ofstream(in, std::ios::binary) << ogg;
  const int rc = std::system(("mkvmerge -q --webm -o " + out + " " + in + " > /dev/null").c_str());
  std::ifstream file(out, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  std::remove(in.c_str());
  std::remove(out.c_str());
  if (rc != 0 || bytes.empty()) {
    state.SkipWithError("mkvmerge (mkvtoolnix) could not mux the WebM input");
    return;
  }
  state.counters["bytes"] = static_cast<double>(bytes.size());
  Run(state, {AudioEncoding::kWebmOpus, 0, 0}, bytes, 160);
}
BENCHMARK(BM_WebmOpus48kTo16k)->Unit(benchmark::kMillisecond);

// FLAC of 44.1 kHz stereo 16-bit audio (libFLAC's encoder, level 5), in chunks of 20 ms of the
// stream's average byte rate.
void BM_Flac44k1StereoTo16k(benchmark::State& state) {
  std::vector<float> mono = Audio(44100);
  std::vector<FLAC__int32> interleaved;
  for (float v : mono) {
    const auto s = static_cast<FLAC__int32>(std::lround(std::clamp(v, -1.0f, 1.0f) * 32767));
    interleaved.insert(interleaved.end(), {s, s});
  }
  FLAC__StreamEncoder* encoder = FLAC__stream_encoder_new();
  FLAC__stream_encoder_set_channels(encoder, 2);
  FLAC__stream_encoder_set_bits_per_sample(encoder, 16);
  FLAC__stream_encoder_set_sample_rate(encoder, 44100);
  FLAC__stream_encoder_set_compression_level(encoder, 5);
  std::string bytes;
  auto write = [](const FLAC__StreamEncoder*, const FLAC__byte buffer[], size_t n, uint32_t,
                  uint32_t, void* target) {
    static_cast<std::string*>(target)->append(reinterpret_cast<const char*>(buffer), n);
    return FLAC__STREAM_ENCODER_WRITE_STATUS_OK;
  };
  if (FLAC__stream_encoder_init_stream(encoder, write, nullptr, nullptr, nullptr, &bytes) !=
          FLAC__STREAM_ENCODER_INIT_STATUS_OK ||
      !FLAC__stream_encoder_process_interleaved(encoder, interleaved.data(),
                                                static_cast<uint32_t>(mono.size())) ||
      !FLAC__stream_encoder_finish(encoder)) {
    std::abort();
  }
  FLAC__stream_encoder_delete(encoder);
  state.counters["bytes"] = static_cast<double>(bytes.size());
  Run(state, {AudioEncoding::kFlac, 0, 0}, bytes,
      static_cast<size_t>(bytes.size() / (kSeconds * 50)));
}
BENCHMARK(BM_Flac44k1StereoTo16k)->Unit(benchmark::kMillisecond);

// The resampler alone, 48 kHz -> 16 kHz in 20 ms blocks.
void BM_Resampler48kTo16k(benchmark::State& state) {
  const std::vector<float> in = Audio(48000);
  std::vector<float> out;
  for (auto _ : state) {
    auto resampler = Resampler::Create(48000, 16000);
    out.clear();
    for (size_t at = 0; at < in.size(); at += 960) {
      (void)(*resampler)
          ->Process(absl::MakeConstSpan(in.data() + at, std::min<size_t>(960, in.size() - at)),
                    &out);
    }
    (void)(*resampler)->Flush(&out);
    benchmark::DoNotOptimize(out.data());
  }
  SetCounters(state);
}
BENCHMARK(BM_Resampler48kTo16k)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace speechllm::streaming

BENCHMARK_MAIN();
