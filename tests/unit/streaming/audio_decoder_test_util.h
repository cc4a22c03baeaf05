// Helpers of the audio decoder and resampler tests (unit) and the audio end-to-end tests: the
// golden clips converted with sox and opusenc (and muxed into WebM by mkvmerge) at test time,
// random splits of a byte stream, decoding in chunks, the SNR of a signal against a reference
// within a frequency band (FFT), and Ogg Opus re-muxing to corrupt packets behind valid CRCs, Ogg
// pages to edit and rejoin with fresh CRCs. Test-only; single-threaded.
#ifndef SPEECHLLM_TESTS_UNIT_STREAMING_AUDIO_DECODER_TEST_UTIL_H_
#define SPEECHLLM_TESTS_UNIT_STREAMING_AUDIO_DECODER_TEST_UTIL_H_

#include <ogg/ogg.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "engine/model/real_fft.h"
#include "gtest/gtest.h"
#include "streaming/audio_decoder.h"
#include "tests/test_util.h"

namespace speechllm::streaming::audio_test {

inline std::string ClipPath(const std::string& clip) {
  return speechllm::testing::GoldenDir() + "/" + clip + ".wav";
}

inline std::string ReadFileBytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
}

inline std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "speechllm_audio_" + std::to_string(getpid()) + "_" + name;
}

// Runs a shell command; on failure records a test failure naming it and returns false.
inline bool RunCommand(const std::string& command) {
  const int rc = std::system((command + " 2>&1").c_str());
  if (rc != 0) ADD_FAILURE() << "command failed (" << rc << "): " << command;
  return rc == 0;
}

// `sox -R INPUTS ARGS OUT` (INPUTS: one or more WAV paths plus sox input options); the output
// bytes. `-R` seeds sox's dither: without it two conversions of one clip to 8-bit or G.711 differ
// in random samples, and a test that compares them (raw against WAV) fails now and then.
inline std::string Sox(const std::string& inputs, const std::string& output_args,
                       const std::string& name) {
  const std::string out = TempPath(name);
  if (std::string(SPEECHLLM_SOX_BIN).empty()) {
    ADD_FAILURE() << "sox is not installed (scripts/setup_debian.sh installs it)";
    return "";
  }
  if (!RunCommand(absl::StrCat(SPEECHLLM_SOX_BIN, " -R ", inputs, " ", output_args, " ", out)))
    return "";
  std::string bytes = ReadFileBytes(out);
  std::remove(out.c_str());
  return bytes;
}

// `opusenc --quiet ARGS WAV OUT.opus`; the Ogg Opus bytes.
inline std::string OpusEnc(const std::string& wav, const std::string& args,
                           const std::string& name) {
  const std::string out = TempPath(name);
  if (std::string(SPEECHLLM_OPUSENC_BIN).empty()) {
    ADD_FAILURE() << "opusenc is not installed (opus-tools; scripts/setup_debian.sh installs it)";
    return "";
  }
  if (!RunCommand(absl::StrCat(SPEECHLLM_OPUSENC_BIN, " --quiet ", args, " ", wav, " ", out)))
    return "";
  std::string bytes = ReadFileBytes(out);
  std::remove(out.c_str());
  return bytes;
}

#ifdef SPEECHLLM_MKVMERGE_BIN
// `ogg` muxed into WebM by `mkvmerge --webm ARGS`.
inline std::string ToWebm(const std::string& ogg, const std::string& args,
                          const std::string& name) {
  const std::string in = TempPath(name + ".opus");
  const std::string out = TempPath(name + ".webm");
  if (std::string(SPEECHLLM_MKVMERGE_BIN).empty()) {
    ADD_FAILURE() << "mkvmerge is not installed (mkvtoolnix; scripts/setup_debian.sh installs it)";
    return "";
  }
  std::ofstream(in, std::ios::binary) << ogg;
  const bool ok =
      RunCommand(absl::StrCat(SPEECHLLM_MKVMERGE_BIN, " -q --webm ", args, " -o ", out, " ", in));
  std::string bytes = ok ? ReadFileBytes(out) : "";
  std::remove(in.c_str());
  std::remove(out.c_str());
  return bytes;
}

#endif  // SPEECHLLM_MKVMERGE_BIN

// Chunk sizes summing to `total`: mostly 1..max_chunk bytes, with some 1-3 byte chunks.
inline std::vector<size_t> RandomSplit(size_t total, uint32_t seed, size_t max_chunk = 4000) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> size(1, max_chunk);
  std::uniform_int_distribution<int> tiny(0, 4);
  std::vector<size_t> chunks;
  for (size_t done = 0; done < total;) {
    size_t n = tiny(rng) == 0 ? 1 + rng() % 3 : size(rng);
    n = std::min(n, total - done);
    chunks.push_back(n);
    done += n;
  }
  return chunks;
}

// Decodes `bytes` cut into `chunks` (all in one call when empty) with a fresh decoder, then
// Finish(); the first error, else the samples.
inline absl::StatusOr<std::vector<float>> DecodeChunks(const AudioFormatSpec& format,
                                                       const std::string& bytes,
                                                       const std::vector<size_t>& chunks = {},
                                                       int output_rate_hz = 16000,
                                                       int64_t* clipped = nullptr) {
  auto decoder = AudioDecoder::Create(format, output_rate_hz);
  if (!decoder.ok()) return decoder.status();
  std::vector<float> out;
  if (chunks.empty()) {
    if (absl::Status s = (*decoder)->Decode(bytes, &out, clipped); !s.ok()) return s;
  } else {
    size_t offset = 0;
    for (size_t n : chunks) {
      absl::string_view chunk(bytes.data() + offset, n);
      if (absl::Status s = (*decoder)->Decode(chunk, &out, clipped); !s.ok()) return s;
      offset += n;
    }
  }
  if (absl::Status s = (*decoder)->Finish(&out); !s.ok()) return s;
  return out;
}

// Decodes `bytes` cut by RandomSplit(seed, max_chunk), printing and returning the status: the
// malformed-input tests expect an error.
inline absl::Status DecodeError(const AudioFormatSpec& format, const std::string& bytes,
                                uint32_t seed = 11, size_t max_chunk = 4000) {
  absl::Status status =
      DecodeChunks(format, bytes, RandomSplit(bytes.size(), seed, max_chunk)).status();
  std::printf("  -> %s\n", status.ToString().c_str());
  return status;
}

inline void ExpectInvalid(const absl::Status& status, const std::string& needle) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_NE(status.message().find(needle), std::string::npos) << status;
}

// One Decode() of all of `bytes` by a decoder bounded to `max_samples` a call: the status, with
// the samples it appended in `out`.
inline absl::Status DecodeOnceWithLimit(const AudioFormatSpec& format, const std::string& bytes,
                                        int64_t max_samples, std::vector<float>* out) {
  auto decoder = AudioDecoder::Create(format, 16000);
  if (!decoder.ok()) return decoder.status();
  (*decoder)->LimitSamplesPerDecode(max_samples);
  const absl::Status status = (*decoder)->Decode(bytes, out, nullptr);
  std::printf("%.1f s against a %.1f s limit: %s (%zu samples)\n", out->size() / 16000.0,
              max_samples / 16000.0, status.ToString().c_str(), out->size());
  return status;
}

// Index of the first sample where two vectors differ bit for bit; -1 if equal (sizes too).
inline int64_t FirstDifference(const std::vector<float>& a, const std::vector<float>& b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (std::memcmp(&a[i], &b[i], sizeof(float)) != 0) return static_cast<int64_t>(i);
  }
  return a.size() == b.size() ? -1 : static_cast<int64_t>(n);
}

// The SNR in dB of `signal` against `reference` (both at `rate_hz`, aligned, compared over the
// reference's length) counting only the spectrum between `low_hz` and `high_hz`: both are
// Hann-windowed, zero-padded to a power of two and transformed; SNR = 10 log10(sum |R|^2 /
// sum |S - R|^2) over the band's bins.
inline double BandSnrDb(const std::vector<float>& signal, const std::vector<float>& reference,
                        int rate_hz, double low_hz, double high_hz) {
  const size_t n = reference.size();
  size_t fft_size = 2;
  while (fft_size < n) fft_size *= 2;
  std::vector<float> r(fft_size, 0.0f), d(fft_size, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    const double w = 0.5 - 0.5 * std::cos(2 * M_PI * (i + 0.5) / n);
    const double s = i < signal.size() ? signal[i] : 0.0;
    r[i] = static_cast<float>(w * reference[i]);
    d[i] = static_cast<float>(w * (s - reference[i]));
  }
  engine::RealFft fft(static_cast<int>(fft_size));
  std::vector<std::complex<float>> rf(fft_size / 2 + 1), df(fft_size / 2 + 1);
  fft.Forward(r.data(), rf.data());
  fft.Forward(d.data(), df.data());
  double signal_energy = 0, noise_energy = 0;
  for (size_t k = 0; k < rf.size(); ++k) {
    const double hz = static_cast<double>(k) * rate_hz / fft_size;
    if (hz < low_hz || hz > high_hz) continue;
    signal_energy += std::norm(rf[k]);
    noise_energy += std::norm(df[k]);
  }
  return 10 * std::log10(signal_energy / std::max(noise_energy, 1e-30));
}

// clip_a as Ogg Opus at 32 kbit/s (opusenc), encoded once per test binary.
inline const std::string& ClipOpus() {
  static const std::string* bytes =
      new std::string(OpusEnc(ClipPath("clip_a"), "--bitrate 32", "clip_a.opus"));
  return *bytes;
}

// One Ogg page as bytes, for tests that edit pages; JoinOggPages recomputes every CRC.
struct OggPage {
  std::string header;
  std::string body;
  bool eos() const { return (header[5] & 0x04) != 0; }
  void set_eos(bool on) {
    header[5] = static_cast<char>(on ? header[5] | 0x04 : header[5] & ~0x04);
  }
  int64_t granule() const {
    int64_t g = 0;
    std::memcpy(&g, header.data() + 6, 8);  // little-endian (x86, arm64)
    return g;
  }
  void set_granule(int64_t g) { std::memcpy(header.data() + 6, &g, 8); }
};

// The pages of `bytes`, in order (a truncated last page is left out).
inline std::vector<OggPage> OggPages(const std::string& bytes) {
  std::vector<OggPage> pages;
  for (size_t at = 0; at + 27 <= bytes.size();) {
    const int segments = static_cast<unsigned char>(bytes[at + 26]);
    size_t body = 0;
    for (int s = 0; s < segments; ++s) body += static_cast<unsigned char>(bytes[at + 27 + s]);
    if (at + 27 + segments + body > bytes.size()) break;
    pages.push_back({bytes.substr(at, 27 + segments), bytes.substr(at + 27 + segments, body)});
    at += 27 + segments + body;
  }
  return pages;
}

inline std::string JoinOggPages(std::vector<OggPage> pages) {
  std::string out;
  for (OggPage& p : pages) {
    ogg_page page;
    page.header = reinterpret_cast<unsigned char*>(p.header.data());
    page.header_len = static_cast<long>(p.header.size());
    page.body = reinterpret_cast<unsigned char*>(p.body.data());
    page.body_len = static_cast<long>(p.body.size());
    ogg_page_checksum_set(&page);
    out += p.header + p.body;
  }
  return out;
}

// Rebuilds an Ogg Opus stream after `edit` changed its packets (headers on pages of their own,
// granule positions kept), so that tests can corrupt packets behind valid page CRCs.
inline std::string Remux(const std::string& bytes,
                         const std::function<void(std::vector<std::string>*)>& edit) {
  ogg_sync_state sync;
  ogg_sync_init(&sync);
  char* buffer = ogg_sync_buffer(&sync, static_cast<long>(bytes.size()));
  std::memcpy(buffer, bytes.data(), bytes.size());
  ogg_sync_wrote(&sync, static_cast<long>(bytes.size()));
  ogg_stream_state in;
  bool in_open = false;
  std::vector<std::string> packets;
  std::vector<int64_t> granules;
  ogg_page page;
  while (ogg_sync_pageout(&sync, &page) == 1) {
    if (!in_open) ogg_stream_init(&in, ogg_page_serialno(&page));
    in_open = true;
    ogg_stream_pagein(&in, &page);
    ogg_packet packet;
    while (ogg_stream_packetout(&in, &packet) == 1) {
      packets.emplace_back(reinterpret_cast<const char*>(packet.packet), packet.bytes);
      granules.push_back(packet.granulepos);
    }
  }
  if (in_open) ogg_stream_clear(&in);
  ogg_sync_clear(&sync);
  edit(&packets);
  granules.resize(packets.size(), -1);
  ogg_stream_state out;
  ogg_stream_init(&out, 4242);
  std::string result;
  auto append = [&](const ogg_page& p) {
    result.append(reinterpret_cast<const char*>(p.header), p.header_len);
    result.append(reinterpret_cast<const char*>(p.body), p.body_len);
  };
  int64_t last_granule = 0;
  for (size_t i = 0; i < packets.size(); ++i) {
    ogg_packet packet{};
    packet.packet = reinterpret_cast<unsigned char*>(packets[i].data());
    packet.bytes = static_cast<long>(packets[i].size());
    packet.b_o_s = i == 0;
    packet.e_o_s = i + 1 == packets.size();
    if (granules[i] >= 0) last_granule = granules[i];
    packet.granulepos = i < 2 ? 0 : last_granule;
    packet.packetno = static_cast<int64_t>(i);
    ogg_stream_packetin(&out, &packet);
    while (i < 2 ? ogg_stream_flush(&out, &page) : ogg_stream_pageout(&out, &page)) append(page);
  }
  while (ogg_stream_flush(&out, &page)) append(page);
  ogg_stream_clear(&out);
  return result;
}

}  // namespace speechllm::streaming::audio_test

#endif  // SPEECHLLM_TESTS_UNIT_STREAMING_AUDIO_DECODER_TEST_UTIL_H_
