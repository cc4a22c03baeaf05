// A libFuzzer target for AudioDecoder (streaming/audio_decoder.h): the input's first two bytes
// pick the encoding, rate, channel count and output rate, the third the chunk size; the rest is
// decoded in chunks (one packet per chunk for raw Opus), then Finish(). Any crash, sanitizer
// report, status other than OK / INVALID_ARGUMENT, or non-finite sample is a finding. Built and
// run by tools/fuzz/run_audio_fuzz.sh with clang (not part of the CMake build or CI).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "absl/strings/string_view.h"
#include "streaming/audio_decoder.h"

namespace {

using speechllm::streaming::AudioDecoder;
using speechllm::streaming::AudioEncoding;
using speechllm::streaming::AudioFormatSpec;

void Check(const absl::Status& status) {
  if (!status.ok() && status.code() != absl::StatusCode::kInvalidArgument) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const int rates[] = {0, 8000, 11025, 16000, 22050, 44100, 48000, 7999};
  const int outputs[] = {16000, 8000, 48000, 24000};
  AudioFormatSpec format;
  format.encoding = static_cast<AudioEncoding>(data[0] % 10);
  format.sample_rate_hz = rates[(data[0] / 10) % 8];
  format.channels = data[1] % 10;  // 0 to 9: 9 is out of range on purpose
  const int output_rate_hz = outputs[(data[1] / 10) % 4];
  const size_t chunk = 1 + data[2] * 7;
  auto decoder = AudioDecoder::Create(format, output_rate_hz);
  if (!decoder.ok()) {
    Check(decoder.status());
    return 0;
  }
  const absl::string_view bytes(reinterpret_cast<const char*>(data) + 3, size - 3);
  std::vector<float> out;
  absl::Status status;
  for (size_t at = 0; at < bytes.size() && status.ok(); at += chunk) {
    status = (*decoder)->Decode(bytes.substr(at, chunk), &out, nullptr);
  }
  if (status.ok()) status = (*decoder)->Finish(&out);
  Check(status);
  for (float sample : out) {
    if (!std::isfinite(sample)) std::abort();
  }
  return 0;
}
