// The tiny golden checkpoint and its clips' log-mel features, for the model tests that compare two
// code paths of the project against each other (no golden tensors needed). Test-only; the test
// thread. A failure to load is recorded in the calling test and gives null / an undefined tensor.
#ifndef SPEECHLLM_TESTS_MODEL_FIXTURE_MODEL_H_
#define SPEECHLLM_TESTS_MODEL_FIXTURE_MODEL_H_

#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <utility>

#include "engine/io/wav_reader.h"
#include "engine/model/qwen2_audio_model.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace speechllm::testing {

// The fixture model on the CPU in `dtype`.
inline std::unique_ptr<engine::Qwen2AudioModel> LoadFixtureModel(
    const std::string& dtype = "float32") {
  engine::RuntimeOptions options;
  options.dtype = dtype;
  auto model = engine::Qwen2AudioModel::Load(GoldenDir() + "/model", options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(model).value() : nullptr;
}

// Valid-prefix features of `clip` ("clip_a", "clip_b") as [num_mel_bins, frames].
inline at::Tensor FixtureMel(const engine::Qwen2AudioModel& model, const std::string& clip) {
  auto samples = engine::ReadMonoWavFile(GoldenDir() + "/" + clip + ".wav", 16000);
  EXPECT_TRUE(samples.ok()) << samples.status();
  if (!samples.ok()) return at::Tensor();
  auto features = model.log_mel().ExtractValidPrefix(*samples);
  EXPECT_TRUE(features.ok()) << features.status();
  return features.ok() ? model.FeaturesTensor(*features) : at::Tensor();
}

}  // namespace speechllm::testing

#endif  // SPEECHLLM_TESTS_MODEL_FIXTURE_MODEL_H_
