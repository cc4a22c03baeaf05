#include "engine/model/encoder_graphs.h"

#include <c10/core/InferenceMode.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/model/audio_encoder.h"
#include "engine/model/cuda_graph_capture.h"
#include "engine/model/cuda_kernels.h"

#if SPEECHLLM_HAVE_CUDA_GRAPHS
#include <c10/cuda/CUDAGuard.h>
#endif

namespace speechllm::engine {

struct EncoderGraphs::Runtime {
#if SPEECHLLM_HAVE_CUDA_GRAPHS
  GraphCapturer capturer;  // one pool and capture stream for every bucket
#endif
};

struct EncoderGraphs::Graph {
#if SPEECHLLM_HAVE_CUDA_GRAPHS
  CapturedGraph graph;
#endif
  at::Tensor input;      // [bucket, d_model]: the segment's rows, then zeros
  at::Tensor num_valid;  // int64 scalar: how many input rows are the segment's
  at::Tensor output;     // [bucket / 2, d_model]
};

bool EncoderGraphs::Supported(at::Device device) {
  static const bool switched_off = SwitchedOffByEnvironment("SPEECHLLM_ENCODER_GRAPHS");
  return !switched_off && CudaGraphsEnabled(device);
}

int64_t EncoderGraphs::BucketOf(int64_t positions, int64_t max_positions) {
  TORCH_CHECK(positions >= 1 && positions <= max_positions, "a segment of ", positions,
              " encoder positions (at most ", max_positions, ")");
  const int64_t whole_buckets = (positions + kBucketPositions - 1) / kBucketPositions;
  return std::min(whole_buckets * kBucketPositions, max_positions);
}

std::vector<int64_t> EncoderGraphs::Buckets(int64_t max_positions) {
  std::vector<int64_t> buckets;
  for (int64_t positions = 1; positions <= max_positions; positions = buckets.back() + 1) {
    buckets.push_back(BucketOf(positions, max_positions));
  }
  return buckets;
}

EncoderGraphs::EncoderGraphs(const AudioEncoder* encoder, const at::TensorOptions& options)
    : encoder_(encoder), options_(options), runtime_(std::make_unique<Runtime>()) {}

EncoderGraphs::~EncoderGraphs() = default;

std::unique_ptr<EncoderGraphs::Graph> EncoderGraphs::Capture(int64_t bucket) {
  auto g = std::make_unique<Graph>();
  g->input = at::zeros({bucket, encoder_->config().d_model}, options_);
  g->num_valid = at::full({}, bucket, options_.dtype(at::kLong));
#if SPEECHLLM_HAVE_CUDA_GRAPHS
  runtime_->capturer.Capture(options_.device(), &g->graph, [&] {
    g->output = encoder_->EncodePaddedSegment(g->input, g->num_valid);
  });
  return g;
#else
  TORCH_CHECK(false, "this build has no CUDA graphs (CUDA libtorch and SPEECHLLM_WITH_CUDA)");
#endif
}

EncoderGraphs::Graph& EncoderGraphs::GraphFor(int64_t bucket) {
  auto it = graphs_.find(bucket);
  if (it == graphs_.end()) it = graphs_.emplace(bucket, Capture(bucket)).first;
  return *it->second;
}

void EncoderGraphs::CaptureAll() {
  const c10::InferenceMode inference_mode;
  const std::vector<int64_t> buckets = Buckets(encoder_->config().max_source_positions);
  for (auto it = buckets.rbegin(); it != buckets.rend(); ++it) GraphFor(*it);
}

bool EncoderGraphs::Accepts(const at::Tensor& conv) const {
  return conv.dim() == 2 && conv.size(0) >= 2 &&
         conv.size(0) <= encoder_->config().max_source_positions &&
         conv.size(1) == encoder_->config().d_model &&
         conv.scalar_type() == options_.dtype().toScalarType() &&
         conv.device() == options_.device();
}

at::Tensor EncoderGraphs::Run(const at::Tensor& conv) {
  TORCH_CHECK(Accepts(conv), "an encoder graph of ", options_.dtype(), " on ", options_.device(),
              " cannot take conv rows ", conv.sizes(), " of ", conv.scalar_type(), " on ",
              conv.device());
  const int64_t positions = conv.size(0);
  const int64_t bucket = BucketOf(positions, encoder_->config().max_source_positions);
  Graph* g = nullptr;
  {
    // The static buffers are inference tensors, updated in place at every replay: both need
    // inference mode, whatever the caller's.
    const c10::InferenceMode inference_mode;
#if SPEECHLLM_HAVE_CUDA_GRAPHS
    // replay() launches on the current device's current stream.
    const c10::cuda::CUDAGuard device_guard(options_.device());
#endif
    g = &GraphFor(bucket);
    g->input.narrow(0, 0, positions).copy_(conv);
    // Padding keys are masked, but a non-finite one would still turn the masked scores into NaN.
    if (bucket > positions) g->input.narrow(0, positions, bucket - positions).zero_();
    g->num_valid.fill_(positions);
#if SPEECHLLM_HAVE_CUDA_GRAPHS
    g->graph.replay();
#endif
  }
  // A copy made outside inference mode (an ordinary tensor, as the eager pass returns): the next
  // replay of any bucket may reuse the output's memory (one shared pool).
  return g->output.narrow(0, 0, positions / 2).clone();
}

// AudioEncoder's side of the graphs (declared in audio_encoder.h).

absl::Status AudioEncoder::GraphsStatus() const {
  const absl::MutexLock lock(&graphs_mutex_);
  return graphs_status_;
}

int64_t AudioEncoder::NumSegmentGraphs() const {
  const absl::MutexLock lock(&graphs_mutex_);
  return graphs_ == nullptr ? 0 : graphs_->num_graphs();
}

bool AudioEncoder::GraphsApply(at::Device device) const {
  return EncoderGraphs::Supported(device) && !conv1_weight_.requires_grad();
}

absl::Status AudioEncoder::WithGraphs(const std::function<void(EncoderGraphs&)>& use) const {
  const absl::MutexLock lock(&graphs_mutex_);
  if (!graphs_status_.ok()) return graphs_status_;
  try {
    if (graphs_ == nullptr) {
      graphs_ = std::make_unique<EncoderGraphs>(this, conv1_weight_.options());
    }
    use(*graphs_);
  } catch (const c10::Error& e) {
    graphs_status_ =
        absl::InternalError(absl::StrCat("encoder CUDA graphs off: ", e.what_without_backtrace()));
    graphs_.reset();
  } catch (const std::exception& e) {  // std::bad_alloc from a pinned or graph-pool allocation
    graphs_status_ = absl::InternalError(absl::StrCat("encoder CUDA graphs off: ", e.what()));
    graphs_.reset();
  }
  return graphs_status_;
}

absl::Status AudioEncoder::CaptureSegmentGraphs() const {
  if (!GraphsApply(conv1_weight_.device())) return absl::OkStatus();
  return WithGraphs([](EncoderGraphs& graphs) { graphs.CaptureAll(); });
}

std::optional<std::vector<at::Tensor>> AudioEncoder::ReplaySegmentGraphs(
    const std::vector<EncoderWork>& work) const {
  if (static_cast<int64_t>(work.size()) > EncoderGraphs::kMaxSegmentsPerPass ||
      !GraphsApply(work[0].conv.device())) {
    return std::nullopt;
  }
  for (const EncoderWork& item : work) {
    if (item.cache != nullptr || item.first_position != 0 || item.conv.requires_grad()) {
      return std::nullopt;
    }
  }
  std::vector<at::Tensor> out;
  bool accepted = true;
  const absl::Status replayed = WithGraphs([&](EncoderGraphs& graphs) {
    for (const EncoderWork& item : work) accepted = accepted && graphs.Accepts(item.conv);
    if (!accepted) return;  // a shape or dtype no graph takes: the eager pass, graphs kept
    for (const EncoderWork& item : work) out.push_back(graphs.Run(item.conv));
  });
  if (!replayed.ok() || !accepted) return std::nullopt;
  return out;
}

}  // namespace speechllm::engine
