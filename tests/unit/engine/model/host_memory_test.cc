// HostAvailableMemoryBytes' parsers: /proc/meminfo's MemAvailable and a cgroup's limit less its
// use (v2 "max" and malformed texts are unknown), and the live reading of this machine.
#include "engine/model/host_memory.h"

#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace speechllm::engine {
namespace {

TEST(HostMemoryTest, ReadsMemAvailableInKibibytes) {
  EXPECT_EQ(ParseMemAvailableBytes("MemTotal:       24576000 kB\nMemFree:         1000 kB\n"
                                   "MemAvailable:   24179628 kB\nBuffers:  12 kB\n"),
            int64_t{24179628} * 1024);
  EXPECT_EQ(ParseMemAvailableBytes("MemTotal: 10 kB\nMemFree: 5 kB\n"), -1);  // kernels before 3.14
  EXPECT_EQ(ParseMemAvailableBytes("MemAvailable: lots kB\n"), -1);
  EXPECT_EQ(ParseMemAvailableBytes("MemAvailable: 100\n"), -1);  // no unit
  EXPECT_EQ(ParseMemAvailableBytes(""), -1);
}

TEST(HostMemoryTest, ACgroupLimitLeavesItsLimitLessItsUse) {
  EXPECT_EQ(CgroupAvailableBytes("8589934592\n", "2147483648\n"), int64_t{6} << 30);
  EXPECT_EQ(CgroupAvailableBytes("1000\n", "1200\n"), 0);        // over the limit (reclaim pending)
  EXPECT_EQ(CgroupAvailableBytes("max\n", "2147483648\n"), -1);  // cgroup v2 without a limit
  EXPECT_EQ(CgroupAvailableBytes("", ""), -1);                   // no such file
  EXPECT_EQ(CgroupAvailableBytes("-5", "1"), -1);
}

// Page cache of files the group read counts as used in memory.current / usage_in_bytes but is
// reclaimable: a group whose cache filled its limit still has room (the automatic encoder budget
// would otherwise fall to nothing in a long-lived container).
TEST(HostMemoryTest, ReclaimableFileCacheIsNotUse) {
  const std::string v2_stat =
      "anon 1073741824\nfile 6442450944\nactive_file 1073741824\n"
      "inactive_file 5368709120\nslab 1000\n";
  EXPECT_EQ(ParseCgroupStat(v2_stat, "inactive_file"), int64_t{5} << 30);
  EXPECT_EQ(ParseCgroupStat(v2_stat, "active_file"), int64_t{1} << 30);
  EXPECT_EQ(ParseCgroupStat(v2_stat, "missing"), 0);
  // 8 GiB limit, 8 GiB used of which 5 GiB inactive file cache: 5 GiB available.
  EXPECT_EQ(CgroupAvailableBytes("8589934592", "8589934592", v2_stat), int64_t{5} << 30);
  const std::string v1_stat =
      "cache 100\ninactive_file 1073741824\n"
      "total_inactive_file 2147483648\n";
  EXPECT_EQ(CgroupAvailableBytes("8589934592", "8589934592", v1_stat), int64_t{2} << 30);
  // More cache than use (a racy read) clamps to no use, not to more than the limit.
  EXPECT_EQ(CgroupAvailableBytes("1000", "10", "inactive_file 50\n"), 1000);
  EXPECT_EQ(CgroupAvailableBytes("1000", "900", "inactive_file x\n"), 100);  // malformed: none
}

// This machine has a /proc/meminfo: the reading is positive.
TEST(HostMemoryTest, ThisMachineReportsSomeMemory) {
  const int64_t available = HostAvailableMemoryBytes();
  std::printf("host memory available to this process: %lld MiB\n",
              static_cast<long long>(available >> 20));
  EXPECT_GT(available, 0);
}

}  // namespace
}  // namespace speechllm::engine
