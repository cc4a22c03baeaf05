// The torch side of the project's CUDA kernels (engine/cuda): the decoder's paged attention (one
// launch per layer for the rows DecoderBatch::Prepare assigned to it, reading the KvPool's tensors
// in place), the fused RMSNorm, rotary embedding and SwiGLU, and the small-batch GEMM. Only builds
// with SPEECHLLM_CUDA_KERNELS have the kernels; elsewhere CudaKernelsEnabled() is false and the
// layers keep their libtorch code. Called on the thread that runs the model.
#ifndef SPEECHLLM_ENGINE_MODEL_CUDA_KERNELS_H_
#define SPEECHLLM_ENGINE_MODEL_CUDA_KERNELS_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <utility>

#include "engine/model/decoder_batch.h"

namespace speechllm::engine {

// True when the kernels are compiled in, `device` is CUDA, autograd is off (inference; the kernels
// have no backward) and the environment does not switch them off (SPEECHLLM_USE_CUDA_KERNELS=0
// keeps every layer on libtorch, for comparisons).
bool CudaKernelsEnabled(at::Device device);

// True when chunk prefills' attention should come in tiles of a whole chunk for the tensor-core
// kernel: the kernels are on for `device`, `dtype` is 16-bit, `head_dim` is 16, 32, 64 or 128, the
// device has tensor cores (compute capability 8.0) and SPEECHLLM_ATTENTION_TENSOR_CORES is not "0".
bool CudaTensorCoreTiles(at::Device device, at::ScalarType dtype, int64_t head_dim);

// True when the environment variable `name` is "0": how the GPU path's switches
// (SPEECHLLM_USE_CUDA_KERNELS, SPEECHLLM_CUDA_GRAPHS, SPEECHLLM_ENCODER_GRAPHS,
// SPEECHLLM_ATTENTION_TENSOR_CORES, SPEECHLLM_PINNED_UPLOADS) turn their paths off, each read once.
bool SwitchedOffByEnvironment(const char* name);

// Attention of `query` [batch.kernel_num_rows, num_heads, head_dim] (the kernel rows, in order)
// over the pool tensors [slots, num_kv_heads, head_dim] of one layer: [kernel rows, num_heads *
// head_dim] in the query's dtype.
at::Tensor CudaPagedAttention(const at::Tensor& query, const at::Tensor& key_cache,
                              const at::Tensor& value_cache, const DecoderBatch& batch,
                              int64_t block_size);

// The fused layers (engine/cuda/fused_layers.h): the results of RmsNorm::Forward,
// RotaryEmbedding::Apply (layers.cc) and silu(gate) * up (Decoder::Mlp) up to float32 summation
// order. Inputs on one CUDA device, in one dtype.
at::Tensor CudaRmsNorm(const at::Tensor& x, const at::Tensor& weight, double eps);
// {x + residual, RmsNorm of it} in one launch (RmsNorm::AddAndForward).
std::pair<at::Tensor, at::Tensor> CudaAddRmsNorm(const at::Tensor& x, const at::Tensor& residual,
                                                 const at::Tensor& weight, double eps);
at::Tensor CudaRotary(const at::Tensor& x, const at::Tensor& positions, const at::Tensor& cos,
                      const at::Tensor& sin);
at::Tensor CudaSwiGlu(const at::Tensor& gate, const at::Tensor& up);

// The q/k/v step of Decoder::Attention in one launch (cuda::LaunchRotaryQkvToPool): from the fused
// product `qkv` [tokens, (num_heads + 2 num_kv_heads) * head_dim] (rows may lie apart), rotary q
// and k at `positions` as RotaryEmbedding::Apply with the tables cos/sin, and k and v written into
// key_cache / value_cache [pool slots, num_kv_heads, head_dim] at int64 `slots` as KvPool::Write.
// Returns {q [tokens, num_heads, head_dim], rotary k [tokens, num_kv_heads, head_dim] when
// `want_keys`, else undefined}.
std::pair<at::Tensor, at::Tensor> CudaRotaryQkvToPool(
    const at::Tensor& qkv, int64_t num_heads, int64_t num_kv_heads, const at::Tensor& positions,
    const at::Tensor& slots, const at::Tensor& cos, const at::Tensor& sin,
    const at::Tensor& key_cache, const at::Tensor& value_cache, bool want_keys);

// at::linear(x, weight, bias) through the skinny GEMM (engine/cuda/skinny_gemm.h) for x [rows,
// in_features] of 1 to 8 rows: float32 sums, one rounding. An undefined tensor where the layout
// does not fit the kernel (or the build has none): the caller then keeps at::linear.
at::Tensor CudaSkinnyLinear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

// Device milliseconds per repetition of `enqueue` (launches on `device`'s current stream), timed as
// a graph replay would run it: without the host's launch gaps (engine/cuda/stream_timer.h).
double CudaDeviceMsPerRep(at::Device device, int reps, const std::function<void()>& enqueue);

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_CUDA_KERNELS_H_
