#include "tests/model/golden_fixture.h"

#include <cstdlib>

#include "engine/io/wav_reader.h"
#include "engine/model/weight_loader.h"
#include "gtest/gtest.h"
#include "tests/test_util.h"

namespace speechllm::testing {
namespace {

std::string& DirectoryOverride() {
  static std::string dir;
  return dir;
}

}  // namespace

TensorErrors Compare(const at::Tensor& out, const at::Tensor& ref) {
  TensorErrors errors;
  const at::Tensor o = out.detach().to(at::kCPU, at::kDouble).reshape(-1);
  const at::Tensor r = ref.detach().to(at::kCPU, at::kDouble).reshape(-1);
  if (o.numel() != r.numel() || r.numel() == 0) {
    ADD_FAILURE() << "shape mismatch: " << out.sizes() << " vs " << ref.sizes();
    errors.max_abs = errors.mean_abs = errors.relative = INFINITY;
    return errors;
  }
  const at::Tensor diff = (o - r).abs();
  errors.max_abs = diff.max().item<double>();
  errors.mean_abs = diff.mean().item<double>();
  errors.relative = (o - r).norm().item<double>() / std::max(r.norm().item<double>(), 1e-30);
  if (std::isnan(errors.relative)) errors.max_abs = errors.mean_abs = errors.relative = NAN;
  return errors;
}

void GoldenFixture::SetDirectory(const std::string& dir) { DirectoryOverride() = dir; }

std::string GoldenFixture::Directory() {
  return DirectoryOverride().empty() ? GoldenDir() : DirectoryOverride();
}

std::unique_ptr<GoldenFixture> GoldenFixture::Open() {
  auto fixture = std::unique_ptr<GoldenFixture>(new GoldenFixture());
  auto file = engine::SafetensorsFile::Open(Directory() + "/golden.safetensors");
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return nullptr;
  fixture->file_ = std::move(file).value();
  return fixture;
}

at::Tensor GoldenFixture::Get(const std::string& key) const {
  auto view = file_->Get(key);
  EXPECT_TRUE(view.ok()) << view.status();
  return view.ok() ? engine::TensorFromView(*view) : at::Tensor();
}

std::vector<float> GoldenFixture::Clip(const std::string& name) const {
  auto samples = engine::ReadMonoWavFile(Directory() + "/" + name + ".wav", 16000);
  EXPECT_TRUE(samples.ok()) << samples.status();
  return samples.ok() ? *samples : std::vector<float>();
}

}  // namespace speechllm::testing
