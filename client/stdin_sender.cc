#include "client/stdin_sender.h"

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "client/pcm_source.h"

namespace speechllm::client {

using speechllm::v1::AudioFormat;

absl::Duration SendStdinAsOpus(PcmStreamReader* reader, OggOpusEncoder* encoder, int chunk_ms,
                               bool realtime, StreamingClient* client,
                               const std::function<bool()>& stop) {
  const AudioFormat& format = reader->format();
  const int64_t samples_per_second =
      static_cast<int64_t>(format.sample_rate_hz()) * std::max(format.channels(), 1);
  int64_t samples_read = 0;  // interleaved
  auto duration_read = [&] {
    return samples_per_second > 0 ? absl::Microseconds(samples_read * 1000000 / samples_per_second)
                                  : absl::ZeroDuration();
  };
  const absl::Time start = absl::Now();
  // Until the audio read so far has played, in short sleeps so that `stop` ends the wait.
  auto wait_for_the_audio = [&] {
    for (absl::Time until = start + duration_read(); !stop();) {
      const absl::Duration left = until - absl::Now();
      if (left <= absl::ZeroDuration()) break;
      absl::SleepFor(std::min(left, absl::Milliseconds(20)));
    }
  };
  const int64_t block_bytes =
      std::max<int64_t>(BytesPerSecond(reader->format()) * chunk_ms / 1000, 2);
  std::string pages;
  while (true) {
    absl::StatusOr<std::string> block = reader->Read(block_bytes, stop);
    if (!block.ok()) {
      std::cerr << "speechllm-client: " << block.status() << "\n";
      break;
    }
    if (block->empty()) break;
    const std::vector<float> samples = DecodePcmS16le(*block);
    samples_read += static_cast<int64_t>(samples.size());
    pages.clear();
    if (absl::Status status = encoder->Write(samples, &pages); !status.ok()) {
      std::cerr << "speechllm-client: " << status << "\n";
      break;
    }
    if (pages.empty()) continue;
    if (realtime) wait_for_the_audio();
    (void)client->SendAudioNow(pages);  // whole pages, at once
  }
  pages.clear();
  if (absl::Status status = encoder->Finish(&pages); !status.ok()) {
    std::cerr << "speechllm-client: " << status << "\n";
  }
  if (!pages.empty()) (void)client->SendAudioNow(pages);
  WarnOfDroppedBytes(*reader);
  return duration_read();
}

void SendStdinBlocks(PcmStreamReader* reader, int64_t max_chunk_bytes, StreamingClient* client,
                     const std::function<bool()>& stop) {
  while (true) {
    absl::StatusOr<std::string> block = reader->Read(max_chunk_bytes, stop);
    if (!block.ok()) {
      std::cerr << "speechllm-client: " << block.status() << "\n";
      break;
    }
    if (block->empty()) break;
    (void)client->SendAudioNow(*block);  // a read is a whole chunk of PCM, or what a pipe held
  }
  WarnOfDroppedBytes(*reader);
}

void WarnOfDroppedBytes(const PcmStreamReader& reader) {
  if (reader.dropped_bytes() > 0) {
    std::cerr << "speechllm-client: dropped " << reader.dropped_bytes()
              << " trailing bytes (a partial sample)\n";
  }
}

}  // namespace speechllm::client
