#include "client/stdin_sender.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client/pcm_source.h"

namespace speechllm::client {

using speechllm::v1::AudioFormat;

absl::Duration SendStdinAsOpus(PcmStreamReader* reader, OggOpusEncoder* encoder, int chunk_ms,
                               bool realtime, StreamingClient* client,
                               const std::function<bool()>& stop) {
  const AudioFormat& format = reader->format();
  const int64_t samples_per_second =
      static_cast<int64_t>(format.sample_rate_hz()) * std::max(format.channels(), 1);
  int64_t samples_read = 0;  // interleaved, encoded
  auto duration_of = [&](int64_t samples) {
    return samples_per_second > 0
               ? std::chrono::microseconds(samples * 1000000 / samples_per_second)
               : std::chrono::microseconds(0);
  };
  // --realtime: a block is encoded once it has played, counted from the first block's arrival
  // (as a microphone's chunk is complete only at its end), so the encoder only ever holds audio
  // that has played and its pages, the last ones included, go out on time. A stop during the wait
  // drops the block, as StreamingClient::StopAudio drops raw PCM not yet due.
  std::optional<Clock::time_point> first_block_at;
  auto played = [&](int64_t samples) {  // false: stopped first
    while (!stop()) {
      const Clock::duration left = *first_block_at + duration_of(samples) - Clock::now();
      if (left <= Clock::duration::zero()) return true;
      std::this_thread::sleep_for(std::min<Clock::duration>(left, std::chrono::milliseconds(20)));
    }
    return false;
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
    const int64_t samples_after = samples_read + static_cast<int64_t>(samples.size());
    if (realtime) {
      if (!first_block_at.has_value()) first_block_at = Clock::now();
      if (!played(samples_after)) break;
    }
    samples_read = samples_after;
    pages.clear();
    if (absl::Status status = encoder->Write(samples, &pages); !status.ok()) {
      std::cerr << "speechllm-client: " << status << "\n";
      break;
    }
    if (!pages.empty()) (void)client->SendAudioNow(pages);  // whole pages, at once
  }
  pages.clear();
  if (absl::Status status = encoder->Finish(&pages); !status.ok()) {
    std::cerr << "speechllm-client: " << status << "\n";
  }
  if (!pages.empty()) (void)client->SendAudioNow(pages);
  WarnOfDroppedBytes(*reader);
  return absl::FromChrono(duration_of(samples_read));
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
