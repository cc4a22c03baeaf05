// The host side of the skinny-GEMM choice (engine/model/linear_tuning.h): the override variable's
// values, the rule that turns one shape's timings into a row limit, the report, and that nothing
// is chosen where the kernels do not run (every CPU build). The kernel and its timing on a device
// are skinny_gemm_gpu_test's.
#include "engine/model/linear_tuning.h"

#include <cmath>
#include <cstdlib>

#include "gtest/gtest.h"

namespace speechllm::engine {
namespace {

TEST(SkinnyGemmSettingTest, AcceptsAutoOffAndRowCounts) {
  for (const char* timed : {"", "auto"}) {
    const absl::StatusOr<SkinnyGemmSetting> setting = ParseSkinnyGemmSetting(timed);
    ASSERT_TRUE(setting.ok()) << timed;
    EXPECT_TRUE(setting->timed) << timed;
  }
  for (const int rows : {0, 1, 5, 8}) {
    const absl::StatusOr<SkinnyGemmSetting> setting = ParseSkinnyGemmSetting(std::to_string(rows));
    ASSERT_TRUE(setting.ok()) << rows;
    EXPECT_FALSE(setting->timed);
    EXPECT_EQ(setting->max_rows, rows);
  }
}

TEST(SkinnyGemmSettingTest, RejectsOtherValuesNamingTheVariable) {
  for (const char* bad : {"9", "-1", "on", "1.5", "auto "}) {
    const absl::StatusOr<SkinnyGemmSetting> setting = ParseSkinnyGemmSetting(bad);
    ASSERT_FALSE(setting.ok()) << bad;
    EXPECT_EQ(setting.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(setting.status().message().find("SPEECHLLM_SKINNY_GEMM"), std::string::npos);
  }
}

SkinnyGemmTiming Timing(int64_t rows, double kernel_us, double library_us) {
  return {4096, 4096, rows, kernel_us, library_us};
}

TEST(SkinnyRowsFromTimingsTest, StopsAtTheFirstRowCountWhereTheKernelLoses) {
  // Given out of order; the kernel loses at 4 rows, so its win at 8 does not count.
  EXPECT_EQ(SkinnyRowsFromTimings(
                {Timing(8, 10, 20), Timing(2, 10, 20), Timing(1, 10, 20), Timing(4, 30, 20)}),
            2);
  EXPECT_EQ(SkinnyRowsFromTimings(
                {Timing(1, 10, 20), Timing(2, 10, 20), Timing(4, 10, 20), Timing(8, 10, 20)}),
            8);
  EXPECT_EQ(SkinnyRowsFromTimings({Timing(1, 20, 10), Timing(2, 5, 10)}), 0);
  EXPECT_EQ(SkinnyRowsFromTimings({}), 0);
}

TEST(SkinnyRowsFromTimingsTest, AWinWithinTwoPercentOrNotANumberIsNoWin) {
  EXPECT_EQ(SkinnyRowsFromTimings({Timing(1, 9.9, 10)}), 0);
  EXPECT_EQ(SkinnyRowsFromTimings({Timing(1, 9.7, 10)}), 1);
  EXPECT_EQ(SkinnyRowsFromTimings({Timing(1, std::nan(""), 10)}), 0);
}

TEST(SkinnyTuningToStringTest, OneEntryPerShapeThenTheFailures) {
  EXPECT_EQ(SkinnyTuningToString({}), "");
  EXPECT_EQ(SkinnyTuningToString({{}, {"4096x4096: no kernel image"}}),
            "timing failed, cuBLAS kept: 4096x4096: no kernel image");
  SkinnyTuning tuning;
  tuning.timings = {{12288, 4096, 1, 21.5, 25}, {12288, 4096, 2, 22, 25}, {4096, 11008, 1, 30, 29}};
  EXPECT_EQ(SkinnyTuningToString(tuning),
            "12288x4096: b1 21.5/25 b2 22/25; 4096x11008: b1 30/29 (kernel/cuBLAS us)");
  tuning.failures = {"151936x3584: out of memory"};
  EXPECT_EQ(SkinnyTuningToString(tuning),
            "12288x4096: b1 21.5/25 b2 22/25; 4096x11008: b1 30/29 (kernel/cuBLAS us); timing "
            "failed, cuBLAS kept: 151936x3584: out of memory");
}

// Sets a variable for one test and restores its absence.
class ScopedVariable {
 public:
  ScopedVariable(const char* name, const char* value) : name_(name) { setenv(name, value, 1); }
  ~ScopedVariable() { unsetenv(name_); }

 private:
  const char* name_;
};

TEST(TuneSkinnyLinearsTest, ChoosesNothingWhereTheKernelsDoNotRun) {
  Linear linear;
  linear.weight = at::randn({16, 8});
  linear.skinny_max_rows = 5;  // a stale choice is cleared
  for (const char* value : {"auto", "4"}) {
    const ScopedVariable variable(kSkinnyGemmVariable, value);
    const absl::StatusOr<SkinnyTuning> tuning = TuneSkinnyLinears({&linear});
    ASSERT_TRUE(tuning.ok()) << tuning.status();
    EXPECT_TRUE(tuning->timings.empty());
    EXPECT_TRUE(tuning->failures.empty());
    EXPECT_EQ(linear.skinny_max_rows, 0) << value;
  }
  // With a limit set anyway, a CPU input keeps at::linear.
  linear.skinny_max_rows = 8;
  const at::Tensor x = at::randn({3, 8});
  EXPECT_TRUE(linear.Forward(x).equal(at::linear(x, linear.weight)));
}

TEST(TuneSkinnyLinearsTest, ABadVariableFailsTheLoadWithItsName) {
  const ScopedVariable variable(kSkinnyGemmVariable, "always");
  Linear linear;
  linear.weight = at::randn({16, 8});
  const absl::StatusOr<SkinnyTuning> tuning = TuneSkinnyLinears({&linear});
  ASSERT_FALSE(tuning.ok());
  EXPECT_EQ(tuning.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(tuning.status().message().find("SPEECHLLM_SKINNY_GEMM=always"), std::string::npos);
}

}  // namespace
}  // namespace speechllm::engine
