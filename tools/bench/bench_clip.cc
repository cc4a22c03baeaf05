#include "tools/bench/bench_clip.h"

#include <algorithm>

#include "engine/io/wav_reader.h"
#include "engine/model/audio_lengths.h"
#include "engine/status_macros.h"

namespace speechllm::bench {

absl::StatusOr<Clip> LoadClip(const std::string& path, const engine::LogMel& log_mel) {
  Clip clip;
  clip.name = path.substr(path.find_last_of('/') + 1);
  absl::StatusOr<std::vector<float>> samples =
      engine::ReadMonoWavFile(path, log_mel.config().sample_rate_hz);
  if (!samples.ok()) return samples.status();
  clip.seconds = static_cast<double>(samples->size()) / log_mel.config().sample_rate_hz;
  SPEECHLLM_ASSIGN_OR_RETURN(const engine::LogMelFeatures f, log_mel.ExtractValidPrefix(*samples));
  clip.num_frames = f.num_frames;
  clip.num_valid_frames = f.num_valid_frames;
  clip.conv_positions = engine::ConvOutputLength(f.num_valid_frames);
  clip.frames.resize(f.values.size());
  for (int64_t t = 0; t < f.num_frames; ++t) {
    for (int64_t m = 0; m < f.num_mel_bins; ++m)
      clip.frames[t * f.num_mel_bins + m] = f.values[m * f.num_frames + t];
  }
  return clip;
}

std::vector<float> BlockFrames(const Clip& clip, int64_t first, int64_t end, int64_t mels) {
  const int64_t begin = first == 0 ? 0 : 2 * first - 2;
  std::vector<float> frames(
      clip.frames.begin() + begin * mels,
      clip.frames.begin() + std::min<int64_t>(2 * end + 1, clip.num_frames) * mels);
  frames.resize((2 * end + 1 - begin) * mels, 0.0f);
  return frames;
}

std::unique_ptr<engine::EncoderChunk> MakeChunk(const Clip& clip, int64_t segment, int64_t first,
                                                int64_t end, int64_t mels, absl::Time arrival) {
  auto chunk = std::make_unique<engine::EncoderChunk>();
  chunk->segment_index = segment;
  chunk->first_position = first;
  chunk->end_position = end;
  chunk->frames = BlockFrames(clip, first, end, mels);
  chunk->arrival_time = arrival;
  chunk->audio_end_seconds = 0.02 * end;
  return chunk;
}

std::unique_ptr<engine::SegmentEnd> MakeSegmentEnd(const Clip& clip, int64_t segment,
                                                   int64_t next_position, int64_t mels,
                                                   absl::Time endpoint) {
  auto end = std::make_unique<engine::SegmentEnd>();
  end->segment_index = segment;
  end->features = clip.frames;
  end->num_frames = clip.num_frames;
  end->num_valid_frames = clip.num_valid_frames;
  end->tail.segment_index = segment;
  end->tail.first_position = next_position;
  end->tail.end_position = clip.conv_positions;
  if (clip.conv_positions > next_position) {
    end->tail.frames = BlockFrames(clip, next_position, clip.conv_positions, mels);
  }
  end->endpoint_time = endpoint;
  end->audio_end_seconds = clip.seconds;
  return end;
}

}  // namespace speechllm::bench
