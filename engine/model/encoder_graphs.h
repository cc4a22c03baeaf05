// EncoderGraphs: CUDA graphs of the audio encoder's pass over one whole segment (no encoder cache:
// an offline clip, a streaming segment's exact final), one per length bucket of 50 positions (1 s
// of audio). A segment is padded to its bucket and the padding keys masked
// (AudioEncoder::EncodePaddedSegment), as transformers pads every clip to 30 s, so at most 30
// graphs cover every length. Owned by the AudioEncoder, which serialises Run under its mutex.
#ifndef SPEECHLLM_ENGINE_MODEL_ENCODER_GRAPHS_H_
#define SPEECHLLM_ENGINE_MODEL_ENCODER_GRAPHS_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

namespace speechllm::engine {

class AudioEncoder;

class EncoderGraphs {
 public:
  static constexpr int64_t kBucketPositions = 50;  // 1 s of audio
  // Passes of more whole segments than this run the batched eager pass instead: one replay per
  // segment leaves most of a large GPU idle in each small product, where the batched pass runs all
  // rows in one (encoder_finals_b4_ms against encoder_finals_b4_eager_ms in model timing).
  static constexpr int64_t kMaxSegmentsPerPass = 4;

  // True when CudaGraphsEnabled(device) and SPEECHLLM_ENCODER_GRAPHS is not "0". Like the project's
  // kernels, false while autograd records (outside c10::InferenceMode or a NoGradGuard).
  static bool Supported(at::Device device);
  // The padded length of a segment of `positions` conv positions (1 <= positions <=
  // max_positions): the next multiple of kBucketPositions, at most max_positions.
  static int64_t BucketOf(int64_t positions, int64_t max_positions);
  // Every bucket up to max_positions, ascending.
  static std::vector<int64_t> Buckets(int64_t max_positions);

  // Graphs of `encoder` for segments of `options`' dtype and device (the encoder's weights').
  EncoderGraphs(const AudioEncoder* encoder, const at::TensorOptions& options);
  ~EncoderGraphs();
  EncoderGraphs(const EncoderGraphs&) = delete;
  EncoderGraphs& operator=(const EncoderGraphs&) = delete;

  // Whether Run takes `conv`: [positions, d_model] rows, 2 <= positions <= max_source_positions,
  // in the graphs' dtype and on their device.
  bool Accepts(const at::Tensor& conv) const;
  // One segment's conv stem rows (Accepts(conv)) -> [positions / 2, d_model], a tensor of its own
  // (not an inference tensor). Captures the bucket's graph at first use; throws c10::Error when the
  // runtime refuses the capture or the build has no graphs.
  at::Tensor Run(const at::Tensor& conv);
  // Captures every bucket's graph now, largest first, so that the smaller ones fit in the memory
  // the largest left in the shared pool. Throws c10::Error as Run does.
  void CaptureAll();

  int64_t num_graphs() const { return static_cast<int64_t>(graphs_.size()); }

 private:
  struct Graph;    // the captured graph with its static buffers (encoder_graphs.cc)
  struct Runtime;  // the CUDA side: memory pool and capture stream (encoder_graphs.cc)

  Graph& GraphFor(int64_t bucket);
  std::unique_ptr<Graph> Capture(int64_t bucket);

  const AudioEncoder* encoder_;
  at::TensorOptions options_;
  std::unique_ptr<Runtime> runtime_;
  std::map<int64_t, std::unique_ptr<Graph>> graphs_;  // by bucket
};

}  // namespace speechllm::engine

#endif  // SPEECHLLM_ENGINE_MODEL_ENCODER_GRAPHS_H_
