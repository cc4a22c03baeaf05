#include "engine/model/cuda_kernels.h"

#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <cstring>

#if SPEECHLLM_CUDA_KERNELS
#include "engine/cuda/fused_layers.h"
#include "engine/cuda/paged_attention.h"
#include "engine/cuda/skinny_gemm.h"
#include "engine/cuda/stream_timer.h"
#endif
// The CUDA libtorch knows the current stream and device. Debian's CPU libtorch (which never holds
// CUDA tensors) ships the c10/cuda headers but not their generated configuration header.
#if __has_include(<c10/cuda/impl/cuda_cmake_macros.h>)
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#define SPEECHLLM_HAVE_C10_CUDA 1
#endif

namespace speechllm::engine {

bool SwitchedOffByEnvironment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && std::strcmp(value, "0") == 0;
}

bool CudaKernelsEnabled(at::Device device) {
#if SPEECHLLM_CUDA_KERNELS
  static const bool switched_off = SwitchedOffByEnvironment("SPEECHLLM_USE_CUDA_KERNELS");
  return device.is_cuda() && !switched_off && !at::GradMode::is_enabled();
#else
  return false;
#endif
}

#if SPEECHLLM_CUDA_KERNELS
namespace {

cuda::AttentionDtype DtypeOf(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return cuda::AttentionDtype::kFloat32;
    case at::kBFloat16:
      return cuda::AttentionDtype::kBFloat16;
    case at::kHalf:
      return cuda::AttentionDtype::kFloat16;
    default:
      TORCH_CHECK(false, "CUDA kernels: unsupported dtype ", t.scalar_type());
  }
}

// Makes `device` current for the launches of a scope (a no-op without c10/cuda, where there is one
// device context at most).
#if SPEECHLLM_HAVE_C10_CUDA
using DeviceGuard = c10::cuda::CUDAGuard;
#else
struct DeviceGuard {
  explicit DeviceGuard(at::Device) {}
};
#endif

// The stream libtorch enqueues on for `device` (null, the legacy default stream, without c10/cuda).
void* StreamOf(const at::Device& device) {
#if SPEECHLLM_HAVE_C10_CUDA
  return c10::cuda::getCurrentCUDAStream(device.index()).stream();
#else
  return nullptr;
#endif
}

void Check(const char* error) { TORCH_CHECK(error == nullptr, error); }

}  // namespace
#endif

bool CudaTensorCoreTiles(at::Device device, at::ScalarType dtype, int64_t head_dim) {
#if SPEECHLLM_CUDA_KERNELS
  static const bool switched_off = SwitchedOffByEnvironment("SPEECHLLM_ATTENTION_TENSOR_CORES");
  if (switched_off || !CudaKernelsEnabled(device) || (dtype != at::kBFloat16 && dtype != at::kHalf))
    return false;
  // The current device's capability (`device` may carry no index; the model's is current).
  return cuda::TensorCoreTilesRun(
      dtype == at::kBFloat16 ? cuda::AttentionDtype::kBFloat16 : cuda::AttentionDtype::kFloat16,
      static_cast<int>(head_dim));
#else
  static_cast<void>(device);
  static_cast<void>(dtype);
  static_cast<void>(head_dim);
  return false;
#endif
}

at::Tensor CudaPagedAttention(const at::Tensor& query, const at::Tensor& key_cache,
                              const at::Tensor& value_cache, const DecoderBatch& batch,
                              int64_t block_size) {
#if SPEECHLLM_CUDA_KERNELS
  TORCH_CHECK(query.dim() == 3 && key_cache.dim() == 3, "paged attention: bad ranks");
  TORCH_CHECK(query.size(0) == batch.kernel_num_rows, "paged attention: ", query.size(0),
              " query rows, ", batch.kernel_num_rows, " kernel rows");
  TORCH_CHECK(key_cache.is_contiguous() && value_cache.is_contiguous(),
              "paged attention: the KV pool must be contiguous");
  TORCH_CHECK(key_cache.scalar_type() == query.scalar_type() &&
                  value_cache.scalar_type() == query.scalar_type(),
              "paged attention: KV pool and query dtypes differ");
  TORCH_CHECK(value_cache.sizes() == key_cache.sizes(), "paged attention: K and V pools differ");
  TORCH_CHECK(key_cache.device() == query.device() && value_cache.device() == query.device(),
              "paged attention: KV pool and query on different devices");
  // The row and table tensors are read through raw device pointers: int32, contiguous, on the
  // query's device (a host tensor here would be an illegal address in the kernel).
  for (const at::Tensor* t :
       {&batch.kernel_row_sequence, &batch.kernel_row_position, &batch.kernel_block_tables}) {
    TORCH_CHECK(t->defined() && t->scalar_type() == at::kInt && t->is_contiguous() &&
                    t->device() == query.device(),
                "paged attention: kernel rows and block tables must be contiguous int32 tensors "
                "on the query's device");
  }
  TORCH_CHECK(batch.kernel_block_tables.dim() == 2 &&
                  batch.kernel_row_sequence.numel() == query.size(0) &&
                  batch.kernel_row_position.numel() == query.size(0),
              "paged attention: one sequence and position per query row");
  const at::Tensor q =
      query.stride(2) == 1 && query.stride(1) == query.size(2) ? query : query.contiguous();
  const int64_t num_heads = q.size(1), head_dim = q.size(2);
  TORCH_CHECK(key_cache.size(2) == head_dim && num_heads % key_cache.size(1) == 0,
              "paged attention: KV pool [", key_cache.size(0), ", ", key_cache.size(1), ", ",
              key_cache.size(2), "] does not fit ", num_heads, " heads of ", head_dim);
  at::Tensor out = at::empty({q.size(0), num_heads * head_dim}, q.options());
  const DeviceGuard device_guard(q.device());
  cuda::PagedAttentionParams p;
  p.query = q.data_ptr();
  p.key_cache = key_cache.data_ptr();
  p.value_cache = value_cache.data_ptr();
  p.output = out.data_ptr();
  p.row_sequence = batch.kernel_row_sequence.data_ptr<int32_t>();
  p.row_position = batch.kernel_row_position.data_ptr<int32_t>();
  p.block_tables = batch.kernel_block_tables.data_ptr<int32_t>();
  p.num_rows = static_cast<int32_t>(q.size(0));
  p.num_heads = static_cast<int32_t>(num_heads);
  p.num_kv_heads = static_cast<int32_t>(key_cache.size(1));
  p.head_dim = static_cast<int32_t>(head_dim);
  p.block_size = static_cast<int32_t>(block_size);
  p.max_blocks_per_sequence = static_cast<int32_t>(batch.kernel_block_tables.size(1));
  p.query_row_stride = q.stride(0);
  p.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  p.dtype = DtypeOf(q);
  p.stream = StreamOf(q.device());
  if (batch.kernel_num_tiles > 0) {
    static_assert(DecoderBatch::kMaxTileRows == cuda::kMaxTileRows &&
                      DecoderBatch::kMaxTensorCoreTileRows == cuda::kMaxTensorCoreTileRows,
                  "tile sizes differ");
    const at::Tensor& tiles = batch.kernel_tiles;
    TORCH_CHECK(tiles.defined() && tiles.scalar_type() == at::kInt && tiles.is_contiguous() &&
                    tiles.device() == query.device() &&
                    tiles.numel() == 2 * batch.kernel_num_tiles + batch.kernel_num_single_rows,
                "paged attention: tiles must be one contiguous int32 tensor on the query's device");
    p.tile_first_row = tiles.data_ptr<int32_t>();
    p.tile_num_rows = p.tile_first_row + batch.kernel_num_tiles;
    p.num_tiles = static_cast<int32_t>(batch.kernel_num_tiles);
    p.single_rows = p.tile_num_rows + batch.kernel_num_tiles;
    p.num_single_rows = static_cast<int32_t>(batch.kernel_num_single_rows);
    p.max_tile_rows = static_cast<int32_t>(batch.kernel_tile_rows);
  }
  Check(cuda::LaunchPagedAttention(p));
  return out;
#else
  TORCH_CHECK(false, "this build has no CUDA kernels (SPEECHLLM_WITH_CUDA=OFF)");
#endif
}

at::Tensor CudaRmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps) {
#if SPEECHLLM_CUDA_KERNELS
  TORCH_CHECK(
      weight.scalar_type() == x.scalar_type() && weight.dim() == 1 && weight.size(0) == x.size(-1),
      "rms norm: weight does not match");
  TORCH_CHECK(weight.device() == x.device(), "rms norm: x and weight must be on one device");
  const at::Tensor input = x.contiguous();
  const at::Tensor w = weight.contiguous();
  at::Tensor out = at::empty_like(input);
  const DeviceGuard device_guard(input.device());
  Check(cuda::LaunchRmsNorm(input.data_ptr(), w.data_ptr(), out.data_ptr(),
                            input.numel() / input.size(-1), static_cast<int32_t>(input.size(-1)),
                            static_cast<float>(eps), DtypeOf(input), StreamOf(input.device())));
  return out;
#else
  TORCH_CHECK(false, "this build has no CUDA kernels (SPEECHLLM_WITH_CUDA=OFF)");
#endif
}

std::pair<at::Tensor, at::Tensor> CudaAddRmsNorm(const at::Tensor& x, const at::Tensor& residual,
                                                 const at::Tensor& weight, double eps) {
#if SPEECHLLM_CUDA_KERNELS
  TORCH_CHECK(
      weight.scalar_type() == x.scalar_type() && weight.dim() == 1 && weight.size(0) == x.size(-1),
      "add + rms norm: weight does not match");
  TORCH_CHECK(residual.sizes() == x.sizes() && residual.scalar_type() == x.scalar_type(),
              "add + rms norm: x and residual differ");
  TORCH_CHECK(weight.device() == x.device() && residual.device() == x.device(),
              "add + rms norm: x, residual and weight must be on one device");
  const at::Tensor input = x.contiguous();
  const at::Tensor r = residual.contiguous();
  const at::Tensor w = weight.contiguous();
  at::Tensor sum = at::empty_like(input);
  at::Tensor out = at::empty_like(input);
  const DeviceGuard device_guard(input.device());
  Check(cuda::LaunchAddRmsNorm(input.data_ptr(), r.data_ptr(), w.data_ptr(), sum.data_ptr(),
                               out.data_ptr(), input.numel() / input.size(-1),
                               static_cast<int32_t>(input.size(-1)), static_cast<float>(eps),
                               DtypeOf(input), StreamOf(input.device())));
  return {sum, out};
#else
  TORCH_CHECK(false, "this build has no CUDA kernels (SPEECHLLM_WITH_CUDA=OFF)");
#endif
}

at::Tensor CudaRotary(const at::Tensor& x, const at::Tensor& positions, const at::Tensor& cos,
                      const at::Tensor& sin) {
#if SPEECHLLM_CUDA_KERNELS
  TORCH_CHECK(x.dim() == 3 && positions.dim() == 1 && positions.size(0) == x.size(0) &&
                  positions.scalar_type() == at::kLong,
              "rotary: x must be [tokens, heads, head_dim] with int64 positions [tokens]");
  TORCH_CHECK(cos.dim() == 2 && cos.scalar_type() == x.scalar_type() && cos.size(1) == x.size(2) &&
                  sin.sizes() == cos.sizes() && sin.scalar_type() == cos.scalar_type() &&
                  cos.is_contiguous() && sin.is_contiguous(),
              "rotary: tables do not match");
  TORCH_CHECK(
      positions.device() == x.device() && cos.device() == x.device() && sin.device() == x.device(),
      "rotary: x, positions and tables must be on one device");
  // Tokens may lie apart (q or k as columns of the fused q/k/v product); heads must be packed.
  const bool packed_heads =
      x.stride(2) == 1 && x.stride(1) == x.size(2) && x.stride(0) >= x.size(1) * x.size(2);
  const at::Tensor input = packed_heads ? x : x.contiguous();
  const at::Tensor pos = positions.contiguous();
  at::Tensor out = at::empty(input.sizes(), input.options());
  const DeviceGuard device_guard(input.device());
  Check(cuda::LaunchRotary(input.data_ptr(), input.stride(0), pos.data_ptr<int64_t>(),
                           cos.data_ptr(), sin.data_ptr(), out.data_ptr(), input.size(0),
                           static_cast<int32_t>(input.size(1)), static_cast<int32_t>(input.size(2)),
                           DtypeOf(input), StreamOf(input.device())));
  return out;
#else
  TORCH_CHECK(false, "this build has no CUDA kernels (SPEECHLLM_WITH_CUDA=OFF)");
#endif
}

std::pair<at::Tensor, at::Tensor> CudaRotaryQkvToPool(
    const at::Tensor& qkv, int64_t num_heads, int64_t num_kv_heads, const at::Tensor& positions,
    const at::Tensor& slots, const at::Tensor& cos, const at::Tensor& sin,
    const at::Tensor& key_cache, const at::Tensor& value_cache, bool want_keys) {
#if SPEECHLLM_CUDA_KERNELS
  TORCH_CHECK(key_cache.dim() == 3 && key_cache.size(1) == num_kv_heads &&
                  value_cache.sizes() == key_cache.sizes() && key_cache.is_contiguous() &&
                  value_cache.is_contiguous(),
              "rotary q/k/v to pool: the pool must be contiguous [slots, kv_heads, head_dim]");
  const int64_t head_dim = key_cache.size(2);
  const int64_t tokens = qkv.size(0);
  TORCH_CHECK(qkv.dim() == 2 && qkv.size(1) == (num_heads + 2 * num_kv_heads) * head_dim &&
                  qkv.stride(1) == 1,
              "rotary q/k/v to pool: qkv must be [tokens, (heads + 2 kv_heads) * head_dim] with "
              "packed columns");
  TORCH_CHECK(positions.dim() == 1 && positions.size(0) == tokens &&
                  positions.scalar_type() == at::kLong && slots.dim() == 1 &&
                  slots.size(0) == tokens && slots.scalar_type() == at::kLong,
              "rotary q/k/v to pool: int64 positions and slots, one per token");
  TORCH_CHECK(cos.dim() == 2 && cos.size(1) == head_dim && sin.sizes() == cos.sizes() &&
                  cos.is_contiguous() && sin.is_contiguous(),
              "rotary q/k/v to pool: tables do not match");
  for (const at::Tensor* t : {&positions, &slots, &cos, &sin, &key_cache, &value_cache}) {
    TORCH_CHECK(t->device() == qkv.device(), "rotary q/k/v to pool: tensors on different devices");
  }
  for (const at::Tensor* t : {&cos, &sin, &key_cache, &value_cache}) {
    TORCH_CHECK(t->scalar_type() == qkv.scalar_type(), "rotary q/k/v to pool: dtypes differ");
  }
  const at::Tensor pos = positions.contiguous(), slot = slots.contiguous();
  at::Tensor q = at::empty({tokens, num_heads, head_dim}, qkv.options());
  at::Tensor k =
      want_keys ? at::empty({tokens, num_kv_heads, head_dim}, qkv.options()) : at::Tensor();
  cuda::RotaryQkvParams p;
  p.qkv = qkv.data_ptr();
  p.qkv_row_stride = tokens == 1 ? qkv.size(1) : qkv.stride(0);
  p.positions = pos.data_ptr<int64_t>();
  p.slots = slot.data_ptr<int64_t>();
  p.cos = cos.data_ptr();
  p.sin = sin.data_ptr();
  p.q_out = q.data_ptr();
  p.k_out = want_keys ? k.data_ptr() : nullptr;
  p.key_cache = key_cache.data_ptr();
  p.value_cache = value_cache.data_ptr();
  p.tokens = tokens;
  p.heads = static_cast<int32_t>(num_heads);
  p.kv_heads = static_cast<int32_t>(num_kv_heads);
  p.head_dim = static_cast<int32_t>(head_dim);
  p.dtype = DtypeOf(qkv);
  const DeviceGuard device_guard(qkv.device());
  p.stream = StreamOf(qkv.device());
  Check(cuda::LaunchRotaryQkvToPool(p));
  return {q, k};
#else
  TORCH_CHECK(false, "this build has no CUDA kernels (SPEECHLLM_WITH_CUDA=OFF)");
#endif
}

at::Tensor CudaSwiGlu(const at::Tensor& gate, const at::Tensor& up) {
#if SPEECHLLM_CUDA_KERNELS
  TORCH_CHECK(gate.sizes() == up.sizes() && gate.scalar_type() == up.scalar_type(),
              "swiglu: gate and up differ");
  TORCH_CHECK(gate.device() == up.device(), "swiglu: gate and up must be on one device");
  // Rows of [rows, width] with packed columns may lie apart (the halves of the fused gate/up
  // product); anything else is packed first.
  const bool rows_in_place = gate.dim() == 2 && gate.stride(1) == 1 && up.stride(1) == 1 &&
                             gate.stride(0) == up.stride(0) && gate.stride(0) >= gate.size(1);
  const at::Tensor g = rows_in_place ? gate : gate.contiguous();
  const at::Tensor u = rows_in_place ? up : up.contiguous();
  const int64_t width = g.dim() == 0 ? 1 : g.size(-1);
  const int64_t rows = width == 0 ? 0 : g.numel() / width;
  const int64_t in_row_stride = rows_in_place ? g.stride(0) : width;
  at::Tensor out = at::empty(g.sizes(), g.options());
  const DeviceGuard device_guard(g.device());
  Check(cuda::LaunchSwiGlu(g.data_ptr(), u.data_ptr(), in_row_stride, out.data_ptr(), rows, width,
                           DtypeOf(g), StreamOf(g.device())));
  return out;
#else
  TORCH_CHECK(false, "this build has no CUDA kernels (SPEECHLLM_WITH_CUDA=OFF)");
#endif
}

at::Tensor CudaSkinnyLinear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
#if SPEECHLLM_CUDA_KERNELS
  const at::ScalarType dtype = x.scalar_type();
  if (dtype != at::kFloat && dtype != at::kBFloat16 && dtype != at::kHalf) return {};
  if (x.dim() != 2 || weight.dim() != 2 || x.size(1) != weight.size(1) ||
      weight.scalar_type() != dtype || !weight.is_contiguous() || x.stride(1) != 1 ||
      weight.device() != x.device() || !x.device().is_cuda() || weight.size(0) > INT32_MAX ||
      weight.size(1) > INT32_MAX) {
    return {};
  }
  if (bias.defined() && (bias.scalar_type() != dtype || !bias.is_contiguous() ||
                         bias.numel() != weight.size(0) || bias.device() != x.device())) {
    return {};
  }
  cuda::SkinnyGemmParams p;
  p.x = x.data_ptr();
  p.x_row_stride = x.size(0) == 1 ? x.size(1) : x.stride(0);
  p.weight = weight.data_ptr();
  p.bias = bias.defined() ? bias.data_ptr() : nullptr;
  p.rows = static_cast<int32_t>(std::min<int64_t>(x.size(0), INT32_MAX));
  p.out_features = static_cast<int32_t>(weight.size(0));
  p.in_features = static_cast<int32_t>(weight.size(1));
  p.dtype = DtypeOf(x);
  if (!cuda::SkinnyGemmFits(p)) return {};
  at::Tensor out = at::empty({x.size(0), weight.size(0)}, x.options());
  p.out = out.data_ptr();
  const DeviceGuard device_guard(x.device());
  p.stream = StreamOf(x.device());
  Check(cuda::LaunchSkinnyGemm(p));
  return out;
#else
  return {};
#endif
}

double CudaDeviceMsPerRep(at::Device device, int reps, const std::function<void()>& enqueue) {
#if SPEECHLLM_CUDA_KERNELS
  TORCH_CHECK(device.is_cuda(), "device timing needs a CUDA device");
  const DeviceGuard device_guard(device);
  // The hold covers the host's enqueueing of every repetition (a few microseconds each).
  const int hold_us = 2000 + 50 * reps;
  float ms = 0.0f;
  Check(cuda::TimeOnStream(StreamOf(device), reps, hold_us, enqueue, &ms));
  return ms;
#else
  TORCH_CHECK(false, "this build has no CUDA kernels (SPEECHLLM_WITH_CUDA=OFF)");
#endif
}

}  // namespace speechllm::engine
