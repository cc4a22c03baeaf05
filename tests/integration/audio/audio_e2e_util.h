// Helpers of the audio end-to-end tests (label integration): audio formats, streams whose
// AudioChunks cut the byte stream at random places, durations. Built on the server e2e harness
// (tests/integration/server/harness.h) and the decoder test helpers. Test-only; any test thread.
#ifndef SPEECHLLM_TESTS_INTEGRATION_AUDIO_AUDIO_E2E_UTIL_H_
#define SPEECHLLM_TESTS_INTEGRATION_AUDIO_AUDIO_E2E_UTIL_H_

#include <string>
#include <utility>

#include "tests/integration/server/harness.h"
#include "tests/unit/streaming/audio_decoder_test_util.h"

namespace speechllm::itest {

using streaming::audio_test::RandomSplit;

inline v1::AudioFormat Format(v1::AudioFormat::Encoding encoding, int rate, int channels) {
  v1::AudioFormat format;
  format.set_encoding(encoding);
  format.set_sample_rate_hz(rate);
  format.set_channels(channels);
  return format;
}

// Streams `bytes` in `format`, one AudioChunk per piece of a random split (1..chunk_bytes, cutting
// samples, frames and Ogg pages anywhere), then half-closes.
inline StreamRun StreamOn(v1::StreamingSpeech::StubInterface* stub, const std::string& bytes,
                          const v1::AudioFormat& format, int64_t chunk_bytes) {
  client::StreamingClientOptions options;
  options.realtime = false;
  options.config = ExactConfig(false, v1::ResultOptions::NONE);
  *options.config.mutable_audio() = format;
  client::StreamingClient client(stub, options);
  EXPECT_TRUE(client.Start().ok());
  size_t at = 0;
  for (size_t n : RandomSplit(bytes.size(), 17, static_cast<size_t>(chunk_bytes))) {
    v1::StreamingRecognizeRequest request;
    request.mutable_audio()->set_data(bytes.substr(at, n));
    EXPECT_TRUE(client.SendRaw(std::move(request)).ok());
    at += n;
  }
  EXPECT_TRUE(client.CloseSend().ok());
  return Collect(&client, absl::Seconds(60));
}

inline double Seconds(const google::protobuf::Duration& d) {
  return d.seconds() + d.nanos() * 1e-9;
}

}  // namespace speechllm::itest

#endif  // SPEECHLLM_TESTS_INTEGRATION_AUDIO_AUDIO_E2E_UTIL_H_
