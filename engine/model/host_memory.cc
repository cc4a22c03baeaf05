#include "engine/model/host_memory.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace speechllm::engine {
namespace {

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A non-negative decimal number of bytes, surrounding whitespace allowed; -1 otherwise.
int64_t ParseBytes(absl::string_view text) {
  int64_t value = -1;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &value) || value < 0) return -1;
  return value;
}

}  // namespace

int64_t ParseMemAvailableBytes(absl::string_view meminfo) {
  for (absl::string_view line : absl::StrSplit(meminfo, '\n')) {
    if (!absl::ConsumePrefix(&line, "MemAvailable:")) continue;
    line = absl::StripAsciiWhitespace(line);
    if (!absl::ConsumeSuffix(&line, "kB")) return -1;
    const int64_t kib = ParseBytes(line);
    return kib < 0 ? -1 : kib * 1024;
  }
  return -1;
}

int64_t ParseCgroupStat(absl::string_view memory_stat, absl::string_view key) {
  for (absl::string_view line : absl::StrSplit(memory_stat, '\n')) {
    if (!absl::ConsumePrefix(&line, key) || !absl::ConsumePrefix(&line, " ")) continue;
    const int64_t value = ParseBytes(line);
    return value < 0 ? 0 : value;
  }
  return 0;
}

int64_t CgroupAvailableBytes(absl::string_view memory_max, absl::string_view memory_current,
                             absl::string_view memory_stat) {
  const int64_t limit = ParseBytes(memory_max);
  int64_t used = ParseBytes(memory_current);
  if (limit < 0 || used < 0) return -1;  // "max" (no limit) is not a number
  const int64_t cache = std::max(ParseCgroupStat(memory_stat, "inactive_file"),
                                 ParseCgroupStat(memory_stat, "total_inactive_file"));
  used = std::max<int64_t>(0, used - cache);
  return limit > used ? limit - used : 0;
}

int64_t HostAvailableMemoryBytes() {
  int64_t available = ParseMemAvailableBytes(ReadWholeFile("/proc/meminfo"));
  auto lower_to = [&available](int64_t bytes) {
    if (bytes >= 0 && (available < 0 || bytes < available)) available = bytes;
  };
  // A container sees its own cgroup at the root of the mount; otherwise the path of
  // /proc/self/cgroup's line ("0::/path" for cgroup v2, "N:memory:/path" for v1) names it.
  std::vector<std::string> v2_dirs = {"/sys/fs/cgroup"}, v1_dirs = {"/sys/fs/cgroup/memory"};
  for (absl::string_view line : absl::StrSplit(ReadWholeFile("/proc/self/cgroup"), '\n')) {
    const std::vector<absl::string_view> fields = absl::StrSplit(line, absl::MaxSplits(':', 2));
    if (fields.size() != 3 || fields[2].empty() || fields[2] == "/") continue;
    if (fields[1].empty()) v2_dirs.push_back(absl::StrCat("/sys/fs/cgroup", fields[2]));
    if (fields[1] == "memory") v1_dirs.push_back(absl::StrCat("/sys/fs/cgroup/memory", fields[2]));
  }
  for (const std::string& dir : v2_dirs) {
    lower_to(CgroupAvailableBytes(ReadWholeFile(dir + "/memory.max"),
                                  ReadWholeFile(dir + "/memory.current"),
                                  ReadWholeFile(dir + "/memory.stat")));
  }
  for (const std::string& dir : v1_dirs) {  // an unlimited v1 group reads about 2^63
    lower_to(CgroupAvailableBytes(ReadWholeFile(dir + "/memory.limit_in_bytes"),
                                  ReadWholeFile(dir + "/memory.usage_in_bytes"),
                                  ReadWholeFile(dir + "/memory.stat")));
  }
  return available;
}

}  // namespace speechllm::engine
