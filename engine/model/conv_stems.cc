// AudioEncoder::ConvStems: the conv stems of a whole encoder pass as two GEMMs. conv1 (k = 3,
// stride 1) and conv2 (k = 3, stride 2) become products of the weights, reordered to (tap,
// channel), with windows of rows gathered from one frame-major tensor; zero padding comes from
// zero rows. The layouts and padding per kind follow ConvStem and ConvBlock (audio_encoder.cc).
#include <cstring>

#include "engine/model/audio_encoder.h"
#include "engine/model/device_upload.h"

namespace speechllm::engine {
namespace {

constexpr int64_t kTaps = 3;

struct Padding {
  int64_t left1, right1, left2, right2;  // zero rows before/after conv1's and conv2's input
};

Padding PaddingOf(ConvStemInput::Kind kind) {
  switch (kind) {
    case ConvStemInput::Kind::kSegment:
      return {1, 1, 1, 1};
    case ConvStemInput::Kind::kFirstBlock:
      return {1, 0, 1, 0};
    case ConvStemInput::Kind::kLaterBlock:
      break;
  }
  return {0, 0, 0, 0};
}

// (out, in, tap) -> (out, tap * in): the weight of a GEMM over windows laid out tap by tap.
at::Tensor GemmWeight(const at::Tensor& conv_weight) {
  return conv_weight.permute({0, 2, 1}).reshape({conv_weight.size(0), -1});
}

}  // namespace

std::vector<at::Tensor> AudioEncoder::ConvStems(const std::vector<ConvStemInput>& inputs,
                                                at::Device device) const {
  TORCH_CHECK(!inputs.empty(), "conv stems: no input");
  const int64_t mels = config_.num_mel_bins, d_model = config_.d_model;
  // Host side: every item's conv1 input rows (zero padding included) in one buffer, and the row
  // indices of every conv1 and conv2 window.
  int64_t input_rows = 0, conv1_rows = 0;
  std::vector<Padding> paddings;
  std::vector<int64_t> conv1_rows_of;  // per item
  for (const ConvStemInput& input : inputs) {
    const Padding p = PaddingOf(input.kind);
    const int64_t rows1 = p.left1 + input.num_frames + p.right1 - (kTaps - 1);
    TORCH_CHECK(input.frames != nullptr && rows1 >= 1 && p.left2 + rows1 + p.right2 >= kTaps,
                "conv stems: ", input.num_frames, " frames are too few");
    paddings.push_back(p);
    conv1_rows_of.push_back(rows1);
    input_rows += p.left1 + input.num_frames + p.right1;
    conv1_rows += rows1;
  }
  at::Tensor host = at::zeros({input_rows, mels}, at::TensorOptions().dtype(at::kFloat));
  std::vector<int64_t> windows1, windows2, rows2;
  int64_t input_base = 0, conv1_base = 0;
  const int64_t zero_row = conv1_rows;  // appended to conv1's output
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ConvStemInput& input = inputs[i];
    const Padding& p = paddings[i];
    std::memcpy(host.data_ptr<float>() + (input_base + p.left1) * mels, input.frames,
                input.num_frames * mels * sizeof(float));
    const int64_t rows1 = conv1_rows_of[i];
    const int64_t rows_in = rows1 + (kTaps - 1);
    for (int64_t t = 0; t < rows1; ++t) {
      for (int64_t k = 0; k < kTaps; ++k) windows1.push_back(input_base + t + k);
    }
    const int64_t positions = (p.left2 + rows1 + p.right2 - kTaps) / 2 + 1;
    for (int64_t t = 0; t < positions; ++t) {
      for (int64_t k = 0; k < kTaps; ++k) {
        const int64_t j = 2 * t + k - p.left2;  // conv1 output row of this tap, if any
        windows2.push_back(j >= 0 && j < rows1 ? conv1_base + j : zero_row);
      }
    }
    rows2.push_back(positions);
    input_base += rows_in;
    conv1_base += rows1;
  }
  const at::Tensor frames = UploadTensor(host, device, conv1_weight_.scalar_type());
  const at::Tensor conv1 = at::gelu(at::addmm(
      conv1_bias_,
      frames.index_select(0, UploadValues(windows1, device)).view({conv1_rows, kTaps * mels}),
      GemmWeight(conv1_weight_).t()));
  const at::Tensor padded = at::cat({conv1, conv1.new_zeros({1, d_model})}, 0);
  const int64_t positions = static_cast<int64_t>(windows2.size()) / kTaps;
  const at::Tensor conv2 = at::gelu(at::addmm(
      conv2_bias_,
      padded.index_select(0, UploadValues(windows2, device)).view({positions, kTaps * d_model}),
      GemmWeight(conv2_weight_).t()));
  return SplitRows(conv2, rows2);
}

}  // namespace speechllm::engine
