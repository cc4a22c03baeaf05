// Small helpers of the benchmark programs (and speechllm-loadtest's percentiles): a latency
// recorder with percentiles (also kept for a steady window of the run) and a flat JSON object
// writer. Single-threaded; owned by the benchmark's main thread.
#ifndef SPEECHLLM_TOOLS_BENCH_BENCH_STATS_H_
#define SPEECHLLM_TOOLS_BENCH_BENCH_STATS_H_

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"

namespace speechllm::bench {

// Nearest-rank percentile of `values`, sorted in place (0 when empty); q in [0, 1].
inline double NearestRankPercentile(std::vector<double>& values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
  return values[std::min(values.size() - 1, rank == 0 ? 0 : rank - 1)];
}

class LatencyRecorder {
 public:
  void Add(absl::Duration d) { ms_.push_back(absl::ToDoubleMilliseconds(d)); }
  size_t count() const { return ms_.size(); }
  // Nearest-rank percentile in milliseconds (0 when empty).
  double PercentileMs(double q) { return NearestRankPercentile(ms_, q); }

 private:
  std::vector<double> ms_;
};

// Latencies of the whole run, and of the samples whose input arrived within [begin, end): the part
// of a staggered run during which every stream is active (no ramp-up, no tail). An empty window
// (begin == end) keeps no steady samples.
struct WindowedLatency {
  void Add(absl::Duration latency, absl::Time input_time) {
    all.Add(latency);
    if (input_time >= begin && input_time < end) steady.Add(latency);
  }
  LatencyRecorder all, steady;
  absl::Time begin = absl::InfinitePast(), end = absl::InfinitePast();
};

class JsonWriter {
 public:
  void Add(const std::string& key, double value) { Field(key, absl::StrFormat("%.4g", value)); }
  void Add(const std::string& key, int64_t value) { Field(key, absl::StrCat(value)); }
  void Add(const std::string& key, int value) { Field(key, absl::StrCat(value)); }
  void Add(const std::string& key, size_t value) { Field(key, absl::StrCat(value)); }
  void Add(const std::string& key, const std::string& value) {
    std::string quoted = "\"";
    for (const char c : value) {  // JSON string escapes; error messages may hold any byte
      if (c == '"' || c == '\\') {
        quoted += '\\';
        quoted += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        quoted += absl::StrFormat("\\u%04x", static_cast<int>(c));
      } else {
        quoted += c;
      }
    }
    Field(key, quoted + "\"");
  }
  std::string ToString() const { return "{" + body_ + "}"; }

 private:
  void Field(const std::string& key, const std::string& value) {
    absl::StrAppend(&body_, body_.empty() ? "" : ", ", "\"", key, "\": ", value);
  }
  std::string body_;
};

}  // namespace speechllm::bench

#endif  // SPEECHLLM_TOOLS_BENCH_BENCH_STATS_H_
