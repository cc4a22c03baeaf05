// speechllm-encoder-probe: how much a checkpoint's audio encoder output depends on the clip. Prints
// the mean cosine similarity between the first clip's encoder output (and conv stem output) and
// each other clip's, position by position over the first 20 audio tokens. Near 1 means the encoder
// has collapsed to a clip-independent output (docs/training.md).
//   speechllm-encoder-probe --model DIR a.wav b.wav [c.wav ...]
#include <cstdio>
#include <string>
#include <vector>

#include <ATen/core/grad_mode.h>

#include "absl/flags/flag.h"
#include "engine/io/program_flags.h"
#include "engine/io/wav_reader.h"
#include "engine/model/qwen2_audio_model.h"

ABSL_FLAG(std::string, model, "", "checkpoint directory");
ABSL_FLAG(int, tokens, 20, "audio tokens compared (the shortest clip bounds it)");

int main(int argc, char** argv) {
  std::vector<char*> clips = speechllm::engine::ParseProgramFlags(argc, argv);
  clips.erase(clips.begin());
  if (absl::GetFlag(FLAGS_model).empty() || clips.size() < 2) {
    std::fprintf(stderr, "usage: speechllm-encoder-probe --model DIR a.wav b.wav [...]\n");
    return 2;
  }
  auto model = speechllm::engine::Qwen2AudioModel::Load(absl::GetFlag(FLAGS_model), {});
  if (!model.ok()) {
    std::fprintf(stderr, "speechllm-encoder-probe: %s\n", model.status().ToString().c_str());
    return 1;
  }
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> encoded, conv;
  int64_t tokens = absl::GetFlag(FLAGS_tokens);
  for (const char* path : clips) {
    auto samples = speechllm::engine::ReadMonoWavFile(path, 16000);
    if (!samples.ok()) {
      std::fprintf(stderr, "speechllm-encoder-probe: %s\n", samples.status().ToString().c_str());
      return 1;
    }
    auto features = (*model)->log_mel().ExtractValidPrefix(*samples);
    if (!features.ok()) return 1;
    const at::Tensor mel = (*model)->FeaturesTensor(*features);
    encoded.push_back((*model)->encoder().EncodeValidPrefix(mel, features->num_valid_frames));
    conv.push_back((*model)->encoder().ConvStemOf(mel));
    tokens = std::min<int64_t>(tokens, encoded.back().size(0));
  }
  for (size_t i = 1; i < encoded.size(); ++i) {
    const double encoder_cosine =
        at::cosine_similarity(encoded[0].narrow(0, 0, tokens), encoded[i].narrow(0, 0, tokens), 1)
            .mean()
            .item<double>();
    const double conv_cosine =
        at::cosine_similarity(conv[0].narrow(0, 0, 2 * tokens), conv[i].narrow(0, 0, 2 * tokens), 1)
            .mean()
            .item<double>();
    std::printf("%s vs %s: encoder output cosine %.4f, conv stem cosine %.4f (%lld tokens)\n",
                clips[0], clips[i], encoder_cosine, conv_cosine, static_cast<long long>(tokens));
  }
  return 0;
}
