// The fused CUDA layers (engine/cuda/fused_layers.h) against the libtorch layers they replace,
// computed on the CPU in the same dtype (label gpu; skips without a usable device): RMSNorm at the
// 7B and tiny widths (alone and after a residual add), rotary embedding at the 7B and tiny head
// sizes and scattered positions, rotary with the KV pool write of a layer (q/k/v in one launch),
// and SwiGLU; rotary and SwiGLU also on strided rows. float32 within 1e-6 relative; bfloat16
// within one rounding step (rsqrt and exp differ in their last bits between the CPU and CUDA math
// libraries).
#include <cstdio>
#include <string>

#include "engine/cuda/fused_layers.h"
#include "engine/model/layers.h"
#include "gtest/gtest.h"
#include "tests/model/cuda_test_util.h"

namespace speechllm::engine {
namespace {

using speechllm::testing::DeviceBuffer;

cuda::AttentionDtype DtypeOf(at::ScalarType dtype) {
  return dtype == at::kBFloat16 ? cuda::AttentionDtype::kBFloat16 : cuda::AttentionDtype::kFloat32;
}

class FusedLayersGpuTest : public ::testing::TestWithParam<at::ScalarType> {
 protected:
  void SetUp() override {
    if (cuda::CudaDeviceCount() == 0) GTEST_SKIP() << "no CUDA device";
    at::manual_seed(5);
  }
  // Prints and checks the difference of the kernel's output from the CPU layer's.
  void ExpectClose(const std::string& what, const at::Tensor& got, const at::Tensor& expected) {
    const at::Tensor a = got.to(at::kFloat), b = expected.to(at::kFloat);
    const double relative = ((a - b).norm() / b.norm()).item<double>();
    const double max_abs = (a - b).abs().max().item<double>();
    std::printf("%s (%s): relative %.3g, max |err| %.3g\n", what.c_str(),
                GetParam() == at::kBFloat16 ? "bfloat16" : "float32", relative, max_abs);
    EXPECT_LE(relative, GetParam() == at::kBFloat16 ? 1e-2 : 1e-6) << what;
  }
  at::Tensor Random(std::vector<int64_t> shape) {
    return at::randn(shape, at::TensorOptions().dtype(at::kFloat)).to(GetParam());
  }
};

TEST_P(FusedLayersGpuTest, RmsNormMatchesTheLayer) {
  for (const int64_t hidden : {4096, 3584, 64}) {  // Qwen2-Audio-7B, Qwen2-7B, tiny
    RmsNorm norm;
    norm.weight = (1 + 0.1 * Random({hidden}).to(at::kFloat)).to(GetParam());
    norm.eps = 1e-6;
    const at::Tensor x = Random({5, hidden});
    const at::Tensor out = at::empty_like(x);
    DeviceBuffer x_device(x), weight_device(norm.weight), out_device(out);
    const char* error =
        cuda::LaunchRmsNorm(x_device.data(), weight_device.data(), out_device.data(), 5,
                            static_cast<int32_t>(hidden), 1e-6f, DtypeOf(GetParam()), nullptr);
    ASSERT_EQ(error, nullptr) << error;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    out_device.CopyTo(out);
    ExpectClose("rms norm, hidden " + std::to_string(hidden), out, norm.Forward(x));
  }
}

// The residual add and the norm in one launch: the sum exactly as libtorch's x + residual, the
// norm as the layer's of that sum; also written in place over x.
TEST_P(FusedLayersGpuTest, AddRmsNormMatchesAddThenTheLayer) {
  for (const int64_t hidden : {4096, 64}) {
    for (const bool in_place : {false, true}) {
      RmsNorm norm;
      norm.weight = (1 + 0.1 * Random({hidden}).to(at::kFloat)).to(GetParam());
      norm.eps = 1e-6;
      const at::Tensor x = Random({5, hidden}), residual = Random({5, hidden});
      at::Tensor sum = at::empty_like(x), out = at::empty_like(x);
      DeviceBuffer x_device(x), residual_device(residual), weight_device(norm.weight),
          sum_device(sum), out_device(out);
      sum_device.Fill(0xff);
      out_device.Fill(0xff);
      void* sum_target = in_place ? x_device.data() : sum_device.data();
      const char* error = cuda::LaunchAddRmsNorm(
          x_device.data(), residual_device.data(), weight_device.data(), sum_target,
          out_device.data(), 5, static_cast<int32_t>(hidden), 1e-6f, DtypeOf(GetParam()), nullptr);
      ASSERT_EQ(error, nullptr) << error;
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      (in_place ? x_device : sum_device).CopyTo(sum);
      out_device.CopyTo(out);
      const at::Tensor expected_sum = x + residual;
      EXPECT_TRUE(at::equal(sum, expected_sum)) << "the sum differs from x + residual";
      ExpectClose(std::string("add + rms norm, hidden ") + std::to_string(hidden) +
                      (in_place ? ", in place" : ""),
                  out, norm.Forward(expected_sum));
    }
  }
}

// Packed x, and x as the k columns of a fused q/k/v product (tokens 4 + 4 + 4 heads apart).
TEST_P(FusedLayersGpuTest, RotaryMatchesTheLayer) {
  for (const int64_t head_dim : {128, 16}) {
    for (const bool fused_columns : {false, true}) {
      const RotaryEmbedding rotary(head_dim, 1e6, 4096, GetParam(), at::kCPU);
      const at::Tensor qkv = Random({6, 12 * head_dim});
      const at::Tensor x = fused_columns ? qkv.narrow(1, 4 * head_dim, 4 * head_dim)
                                         : qkv.narrow(1, 0, 4 * head_dim).contiguous();
      const at::Tensor positions = at::tensor(std::vector<int64_t>{0, 1, 17, 255, 1000, 4095},
                                              at::TensorOptions().dtype(at::kLong));
      const at::Tensor out = at::empty({6, 4, head_dim}, x.options());
      // The device copy keeps the host layout: the whole q/k/v rows, x starting at its offset.
      DeviceBuffer source_device(fused_columns ? qkv : x), positions_device(positions),
          cos_device(rotary.cos()), sin_device(rotary.sin()), out_device(out);
      const void* x_device = static_cast<const char*>(source_device.data()) +
                             (fused_columns ? 4 * head_dim * x.element_size() : 0);
      out_device.Fill(0xff);  // NaN bytes: the launch must write every element
      const char* error = cuda::LaunchRotary(
          x_device, x.stride(0), static_cast<const int64_t*>(positions_device.data()),
          cos_device.data(), sin_device.data(), out_device.data(), 6, 4,
          static_cast<int32_t>(head_dim), DtypeOf(GetParam()), nullptr);
      ASSERT_EQ(error, nullptr) << error;
      ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
      out_device.CopyTo(out);
      ExpectClose(std::string("rotary, head_dim ") + std::to_string(head_dim) +
                      (fused_columns ? ", k columns of q/k/v" : ", packed"),
                  out, rotary.Apply(x.view({6, 4, head_dim}), positions));
    }
  }
}

// The q/k/v step in one launch: q as RotaryEmbedding::Apply, k as that written to the pool rows
// `slots` (KvPool::Write's index copy) and to k_out, v copied there; every other pool row keeps
// its bytes. 7B and tiny GQA layouts, packed and strided product rows, with and without k_out.
TEST_P(FusedLayersGpuTest, RotaryQkvToPoolMatchesRotaryThenThePoolWrite) {
  struct Layout {
    int32_t heads, kv_heads, head_dim;
  };
  for (const Layout layout : {Layout{32, 32, 128}, Layout{4, 2, 16}}) {
    for (const bool strided_rows : {false, true}) {
      const int64_t h = layout.heads, kvh = layout.kv_heads, d = layout.head_dim;
      const int64_t columns = (h + 2 * kvh) * d, row_stride = columns + (strided_rows ? 2 * d : 0);
      const RotaryEmbedding rotary(d, 1e6, 4096, GetParam(), at::kCPU);
      const at::Tensor storage = Random({5, row_stride});
      const at::Tensor qkv = storage.narrow(1, 0, columns);
      const at::Tensor positions = at::tensor(std::vector<int64_t>{0, 3, 17, 255, 4095},
                                              at::TensorOptions().dtype(at::kLong));
      const at::Tensor slots =
          at::tensor(std::vector<int64_t>{7, 0, 12, 3, 9}, at::TensorOptions().dtype(at::kLong));
      const at::Tensor key_pool = Random({16, kvh, d}), value_pool = Random({16, kvh, d});
      const at::Tensor q = at::empty({5, h, d}, qkv.options()),
                       k = at::empty({5, kvh, d}, qkv.options());
      for (const bool with_keys : {true, false}) {
        DeviceBuffer qkv_device(storage), positions_device(positions), slots_device(slots),
            cos_device(rotary.cos()), sin_device(rotary.sin()), q_device(q), k_device(k),
            key_device(key_pool), value_device(value_pool);
        q_device.Fill(0xff);
        k_device.Fill(0xff);
        cuda::RotaryQkvParams p;
        p.qkv = qkv_device.data();
        p.qkv_row_stride = row_stride;
        p.positions = static_cast<const int64_t*>(positions_device.data());
        p.slots = static_cast<const int64_t*>(slots_device.data());
        p.cos = cos_device.data();
        p.sin = sin_device.data();
        p.q_out = q_device.data();
        p.k_out = with_keys ? k_device.data() : nullptr;
        p.key_cache = key_device.data();
        p.value_cache = value_device.data();
        p.tokens = 5;
        p.heads = layout.heads;
        p.kv_heads = layout.kv_heads;
        p.head_dim = layout.head_dim;
        p.dtype = DtypeOf(GetParam());
        const char* error = cuda::LaunchRotaryQkvToPool(p);
        ASSERT_EQ(error, nullptr) << error;
        ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        const at::Tensor got_keys = at::empty_like(key_pool),
                         got_values = at::empty_like(value_pool);
        q_device.CopyTo(q);
        k_device.CopyTo(k);
        key_device.CopyTo(got_keys);
        value_device.CopyTo(got_values);

        const std::string what = "rotary q/k/v to pool, heads " + std::to_string(h) + "/" +
                                 std::to_string(kvh) + "x" + std::to_string(d) +
                                 (strided_rows ? ", strided rows" : "");
        const at::Tensor expected_k =
            rotary.Apply(qkv.narrow(1, h * d, kvh * d).reshape({5, kvh, d}), positions);
        ExpectClose(what + ": q", q,
                    rotary.Apply(qkv.narrow(1, 0, h * d).reshape({5, h, d}), positions));
        ExpectClose(what + ": k in the pool", got_keys.index_select(0, slots), expected_k);
        if (with_keys) {
          EXPECT_TRUE(at::equal(k, got_keys.index_select(0, slots))) << what;
        } else {
          EXPECT_TRUE(at::isnan(k).all().item<bool>()) << what << ": k_out written without k_out";
        }
        const at::Tensor expected_values = value_pool.clone().index_copy_(
            0, slots, qkv.narrow(1, (h + kvh) * d, kvh * d).reshape({5, kvh, d}));
        EXPECT_TRUE(at::equal(got_values, expected_values)) << what << ": v or an unwritten row";
        const at::Tensor expected_keys =
            key_pool.clone().index_copy_(0, slots, got_keys.index_select(0, slots));
        EXPECT_TRUE(at::equal(got_keys, expected_keys)) << what << ": an unwritten key row changed";
      }
    }
  }
}

// Packed gate and up, and the two halves of a fused gate/up product.
TEST_P(FusedLayersGpuTest, SwiGluMatchesSiluTimesUp) {
  const at::Tensor gate_up =
      at::cat({3 * Random({3, 11008}).to(at::kFloat), Random({3, 11008}).to(at::kFloat)}, 1)
          .to(GetParam());
  const at::Tensor gate = gate_up.narrow(1, 0, 11008), up = gate_up.narrow(1, 11008, 11008);
  for (const bool fused_halves : {false, true}) {
    const at::Tensor out = at::empty({3, 11008}, gate_up.options());
    DeviceBuffer gate_up_device(gate_up), gate_device(gate.contiguous()),
        up_device(up.contiguous()), out_device(out);
    out_device.Fill(0xff);
    const size_t half_bytes = 11008 * gate_up.element_size();
    const char* error =
        fused_halves
            ? cuda::LaunchSwiGlu(gate_up_device.data(),
                                 static_cast<const char*>(gate_up_device.data()) + half_bytes,
                                 2 * 11008, out_device.data(), 3, 11008, DtypeOf(GetParam()),
                                 nullptr)
            : cuda::LaunchSwiGlu(gate_device.data(), up_device.data(), 11008, out_device.data(), 3,
                                 11008, DtypeOf(GetParam()), nullptr);
    ASSERT_EQ(error, nullptr) << error;
    ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    out_device.CopyTo(out);
    ExpectClose(fused_halves ? "swiglu, halves of gate/up" : "swiglu, packed", out,
                at::silu(gate) * up);
  }
}

TEST(FusedLayersParams, BadShapesAreRefusedBeforeAnyLaunch) {
  int dummy = 0;
  EXPECT_NE(cuda::LaunchRmsNorm(&dummy, &dummy, &dummy, 1, 0, 1e-6f, cuda::AttentionDtype::kFloat32,
                                nullptr),
            nullptr);
  EXPECT_EQ(cuda::LaunchRmsNorm(nullptr, nullptr, nullptr, 0, 64, 1e-6f,
                                cuda::AttentionDtype::kFloat32, nullptr),
            nullptr);  // no rows: nothing to do
  const int64_t position = 0;
  EXPECT_NE(cuda::LaunchRotary(&dummy, 60, &position, &dummy, &dummy, &dummy, 1, 4, 15,
                               cuda::AttentionDtype::kFloat32, nullptr),
            nullptr);  // odd head_dim
  EXPECT_NE(cuda::LaunchRotary(&dummy, 63, &position, &dummy, &dummy, &dummy, 2, 4, 16,
                               cuda::AttentionDtype::kFloat32, nullptr),
            nullptr);  // tokens overlap
  EXPECT_NE(cuda::LaunchAddRmsNorm(&dummy, nullptr, &dummy, &dummy, &dummy, 1, 64, 1e-6f,
                                   cuda::AttentionDtype::kFloat32, nullptr),
            nullptr);  // no residual
  EXPECT_NE(
      cuda::LaunchSwiGlu(nullptr, &dummy, 4, &dummy, 1, 4, cuda::AttentionDtype::kFloat32, nullptr),
      nullptr);
  EXPECT_NE(
      cuda::LaunchSwiGlu(&dummy, &dummy, 3, &dummy, 2, 4, cuda::AttentionDtype::kFloat32, nullptr),
      nullptr);  // rows overlap
  cuda::RotaryQkvParams qkv;
  qkv.qkv = qkv.cos = qkv.sin = &dummy;
  qkv.q_out = qkv.key_cache = qkv.value_cache = &dummy;
  qkv.positions = qkv.slots = &position;
  qkv.tokens = 1;
  qkv.heads = 2;
  qkv.kv_heads = 1;
  qkv.head_dim = 16;
  qkv.qkv_row_stride = 63;  // < (2 + 2) * 16: tokens overlap
  EXPECT_NE(cuda::LaunchRotaryQkvToPool(qkv), nullptr);
  qkv.qkv_row_stride = 64;
  qkv.head_dim = 15;
  EXPECT_NE(cuda::LaunchRotaryQkvToPool(qkv), nullptr);  // odd head_dim
  qkv.head_dim = 16;
  qkv.slots = nullptr;
  EXPECT_NE(cuda::LaunchRotaryQkvToPool(qkv), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, FusedLayersGpuTest, ::testing::Values(at::kFloat, at::kBFloat16),
                         [](const ::testing::TestParamInfo<at::ScalarType>& info) {
                           return std::string(info.param == at::kBFloat16 ? "bfloat16" : "float32");
                         });

}  // namespace
}  // namespace speechllm::engine
